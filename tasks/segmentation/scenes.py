"""Procedurally generated scene parsing: small street scenes with a label for every pixel.

Classes (``CLASSES[i]`` has label id ``i``)::

    0 background  terrain between the horizon and the road, and below the road (grass, dirt, pavement)
    1 sky         everything above a tilted, gently undulating horizon
    2 road        a band across the lower part of the image (lane markings are road too)
    3 wall        house bodies
    4 roof        a gable (triangle) or hipped (trapezoid) roof on top of every house body
    5 window      a grid of windows inside each house body
    6 trunk       tree trunks, 2.6..4.2 px wide at 64x64
    7 foliage     tree crowns on top of the trunks: round (three lobes) or conifer (triangle)
    8 pole        thin structures: vertical poles 1 or 2 px wide and the wires between them, 1 px thick

The layout carries context a pixel's colour alone does not: the sky is above
the ground, houses and trees stand on the terrain between the horizon and the
road (further ones higher up, smaller and painted first, so nearer ones occlude
them), roofs sit on walls, windows lie inside walls, crowns sit on trunks, and
poles stand on the far edge of the road with wires from pole top to pole top.
Some colours are deliberately ambiguous: a window often reflects the sky (its
colour is the sky's, darkened), lane markings are road, trunks and poles are
both narrow vertical bars (told apart by width and by the crown on top).

Colours are drawn per image (day, overcast or dusk sky; green, dry or paved
terrain; several wall and roof palettes) and jittered per object, with each
class kept apart from the classes it borders. Per-class textures vary per
image: low-frequency mottling (clouds, terrain), high-frequency grain
(foliage, road), horizontal stripes (walls), a brightening of the sky towards
the horizon; a global brightness and Gaussian pixel noise go over everything.

Rendering and the ignore rule: every image is painted at ``SUPERSAMPLE``
(4) times its size, each output pixel averaging its 4x4 = 16 subsamples, so
edges are anti-aliased. A pixel's label is the class of most of its
subsamples if at least ``MIN_AGREEMENT`` (12 of 16, 75%) of them have it;
otherwise, the pixel is mixed and gets ``IGNORE_INDEX`` (255). Only pixels an
edge passes through can be mixed, so the ignored pixels form a band at most
one pixel wide along (some of) the boundaries between classes. Poles and wires
are drawn on the pixel grid (whole pixels, no anti-aliasing), so thin
structures are never lost to the ignore band.

Image ``i`` is drawn from its own numpy ``Generator``, spawned from
``SeedSequence(seed)``: a dataset is identical for the same arguments on every
run, and the first ``k`` images do not depend on ``n_images``. 1000 images at
64x64 take under two seconds on one CPU core.
"""

from __future__ import annotations

import math

import numpy as np

from bench.errors import ConfigError

CLASSES = ("background", "sky", "road", "wall", "roof", "window", "trunk", "foliage", "pole")
BACKGROUND, SKY, ROAD, WALL, ROOF, WINDOW, TRUNK, FOLIAGE, POLE = range(len(CLASSES))
IGNORE_INDEX = 255
GENERATOR_VERSION = 1
#: each output pixel is the mean of SUPERSAMPLE x SUPERSAMPLE subsamples.
SUPERSAMPLE = 4
#: subsamples (of SUPERSAMPLE**2) that must share a class for the pixel to get it; else IGNORE_INDEX.
MIN_AGREEMENT = 12
MIN_SIZE = 32

_SKY_PALETTES = ((0.45, 0.65, 0.92), (0.72, 0.74, 0.77), (0.92, 0.62, 0.45))
_TERRAIN_PALETTES = ((0.33, 0.55, 0.24), (0.62, 0.56, 0.36), (0.55, 0.55, 0.52))
_WALL_PALETTES = ((0.86, 0.84, 0.78), (0.80, 0.70, 0.55), (0.66, 0.31, 0.22), (0.60, 0.60, 0.62),
                  (0.70, 0.80, 0.70))
_ROOF_PALETTES = ((0.62, 0.20, 0.15), (0.42, 0.26, 0.15), (0.25, 0.27, 0.31), (0.20, 0.40, 0.32))
_MARKINGS = ((0.92, 0.92, 0.88), (0.92, 0.80, 0.22))

# Per-class texture amplitudes (before a per-image factor): low-frequency, grain, stripes, vertical ramp.
_TEX_LF = np.array([0.08, 0.07, 0.02, 0.02, 0.02, 0.0, 0.02, 0.05, 0.0], dtype=np.float32)
_TEX_HF = np.array([0.03, 0.0, 0.05, 0.015, 0.03, 0.0, 0.04, 0.09, 0.0], dtype=np.float32)
_TEX_ST = np.array([0.0, 0.0, 0.0, 0.05, 0.04, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)
_TEX_RAMP = np.array([0.0, 0.18, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)


def _colour(rng: np.random.Generator, base, jitter: float) -> np.ndarray:
    return np.clip(np.asarray(base, dtype=np.float64) + rng.uniform(-jitter, jitter, 3), 0.0, 1.0)


def _apart(colour: np.ndarray, *others: np.ndarray, min_dist: float = 0.35, step: float = 0.3) -> np.ndarray:
    """``colour`` made brighter or darker by ``step`` (hue kept) when closer than ``min_dist`` (L1) to one of
    ``others``: brighter when it is the brighter one and there is room, else darker."""
    for other in others:
        if np.abs(colour - other).sum() < min_dist:
            up = colour.mean() >= other.mean() and colour.max() + step <= 1.0
            colour = np.clip(colour + (step if up else -step), 0.0, 1.0)
    return colour


def _upsample_matrix(cells: int, size: int) -> np.ndarray:
    """Bilinear interpolation weights (size, cells) from a coarse grid to ``size`` pixels."""
    t = np.linspace(0.0, cells - 1.0, size)
    eye = np.eye(cells)
    return np.stack([np.interp(t, np.arange(cells), eye[j]) for j in range(cells)], axis=1)


class _Canvas:
    """A supersampled map of object ids; each object has a class and a colour."""

    def __init__(self, size: int, background_colour: np.ndarray):
        self.size = size
        self.hr = size * SUPERSAMPLE
        self.ids = np.zeros((self.hr, self.hr), dtype=np.uint8)  # id 0 = the background terrain
        self.classes = [BACKGROUND]
        self.colours = [background_colour]
        #: subsample centres in output-pixel units.
        self.grid = ((np.arange(self.hr) + 0.5) / SUPERSAMPLE).astype(np.float32)

    def new(self, cls: int, colour: np.ndarray) -> int:
        if len(self.classes) == 255:
            raise RuntimeError("too many objects in one scene")
        self.classes.append(cls)
        self.colours.append(colour)
        return len(self.classes) - 1

    def span(self, a: float, b: float) -> slice:
        """Subsample indices whose centres lie in [a, b) (output-pixel units), clipped to the canvas."""
        lo = min(max(math.ceil(a * SUPERSAMPLE - 0.5), 0), self.hr)
        hi = min(max(math.ceil(b * SUPERSAMPLE - 0.5), 0), self.hr)
        return slice(lo, max(lo, hi))

    def rect(self, x0: float, y0: float, x1: float, y1: float, oid: int) -> None:
        self.ids[self.span(y0, y1), self.span(x0, x1)] = oid

    def trapezoid(self, xc: float, y_top: float, y_base: float, half_top: float, half_base: float,
                  oid: int) -> None:
        """A symmetric trapezoid (a triangle when ``half_top`` is 0) from ``y_top`` down to ``y_base``."""
        half = max(half_top, half_base)
        rows, cols = self.span(y_top, y_base), self.span(xc - half, xc + half)
        y, x = self.grid[rows, None], self.grid[None, cols]
        t = (y - y_top) / max(y_base - y_top, 1e-6)
        inside = np.abs(x - xc) < half_top + (half_base - half_top) * t
        view = self.ids[rows, cols]
        view[inside] = oid

    def ellipse(self, xc: float, yc: float, rx: float, ry: float, oid: int) -> None:
        rows, cols = self.span(yc - ry, yc + ry), self.span(xc - rx, xc + rx)
        y, x = self.grid[rows, None], self.grid[None, cols]
        inside = ((x - xc) / rx) ** 2 + ((y - yc) / ry) ** 2 < 1.0
        view = self.ids[rows, cols]
        view[inside] = oid

    def pixels(self, mask: np.ndarray, oid: int) -> None:
        """Whole output pixels ``mask`` (size, size), aligned to the pixel grid."""
        hr_mask = np.repeat(np.repeat(mask, SUPERSAMPLE, axis=0), SUPERSAMPLE, axis=1)
        self.ids[hr_mask] = oid


def _house(canvas: _Canvas, rng: np.random.Generator, xc: float, base: float, scale: float, px: float,
           sky: np.ndarray, terrain: np.ndarray) -> None:
    size = canvas.size
    width = scale * rng.uniform(0.16, 0.28) * size
    height = scale * rng.uniform(0.12, 0.22) * size
    wall = _apart(_colour(rng, _WALL_PALETTES[rng.integers(len(_WALL_PALETTES))], 0.06), sky, terrain)
    roof = _apart(_colour(rng, _ROOF_PALETTES[rng.integers(len(_ROOF_PALETTES))], 0.06), sky, wall)
    if rng.random() < 0.5:
        window = np.clip(sky * rng.uniform(0.6, 0.9), 0.0, 1.0)  # reflecting the sky
    else:
        window = _colour(rng, ((0.12, 0.14, 0.18), (0.92, 0.82, 0.45))[rng.integers(2)], 0.05)
    window = _apart(window, wall)
    overhang = rng.uniform(0.0, 0.12) * width
    roof_height = rng.uniform(0.3, 0.6) * width
    hipped = rng.random() < 0.35
    half_top = rng.uniform(0.2, 0.35) * width if hipped else 0.0
    top = base - height
    x0, x1 = xc - width / 2, xc + width / 2
    canvas.rect(x0, top, x1, base, canvas.new(WALL, wall))
    canvas.trapezoid(xc, top - roof_height, top, half_top, width / 2 + overhang, canvas.new(ROOF, roof))
    # Windows: a grid that keeps at least 1 px of wall between windows and around them.
    win_w = max(width * rng.uniform(0.14, 0.22), 2.0 * px)
    win_h = max(height * rng.uniform(0.2, 0.3), 2.0 * px)
    cols = int(rng.integers(1, 4))
    rows = int(rng.integers(1, 3))
    while cols and (width - cols * win_w) / (cols + 1) < px:
        cols -= 1
    while rows and (height * 0.8 - rows * win_h) / (rows + 1) < px:
        rows -= 1
    if cols == 0 or rows == 0:
        return
    oid = canvas.new(WINDOW, window)
    gap_x = (width - cols * win_w) / (cols + 1)
    gap_y = (height * 0.8 - rows * win_h) / (rows + 1)
    for r in range(rows):
        for c in range(cols):
            wx = x0 + gap_x + c * (win_w + gap_x)
            wy = top + gap_y + r * (win_h + gap_y)
            canvas.rect(wx, wy, wx + win_w, wy + win_h, oid)


def _tree(canvas: _Canvas, rng: np.random.Generator, xc: float, base: float, scale: float, px: float,
          foliage_base: np.ndarray, sky: np.ndarray, terrain: np.ndarray) -> None:
    size = canvas.size
    trunk_w = rng.uniform(2.6, 4.2) * px
    trunk_h = scale * rng.uniform(0.06, 0.12) * size
    rx = scale * rng.uniform(0.07, 0.12) * size
    ry = rx * rng.uniform(0.9, 1.4)
    trunk = _apart(_colour(rng, (0.36, 0.25, 0.15), 0.05), terrain)
    foliage = _apart(_apart(np.clip(foliage_base + rng.uniform(-0.05, 0.05, 3), 0.0, 1.0), terrain), sky)
    conifer = rng.random() < 0.3
    lobes = rng.uniform(0.45, 0.65, 2)
    canvas.rect(xc - trunk_w / 2, base - trunk_h - 0.3 * ry, xc + trunk_w / 2, base, canvas.new(TRUNK, trunk))
    oid = canvas.new(FOLIAGE, foliage)
    if conifer:
        canvas.trapezoid(xc, base - trunk_h - 2.4 * ry, base - trunk_h, 0.0, 0.9 * rx, oid)
    else:
        yc = base - trunk_h - 0.8 * ry
        canvas.ellipse(xc, yc, rx, ry, oid)
        canvas.ellipse(xc - 0.55 * rx, yc + 0.25 * ry, lobes[0] * rx, lobes[0] * ry, oid)
        canvas.ellipse(xc + 0.55 * rx, yc + 0.25 * ry, lobes[1] * rx, lobes[1] * ry, oid)


def _poles_and_wires(canvas: _Canvas, rng: np.random.Generator, road_top: np.ndarray, sky: np.ndarray) -> None:
    """0..3 poles 1-2 px wide standing on the far road edge, wires 1 px thick between their tops."""
    size = canvas.size
    count = int(rng.choice(4, p=(0.1, 0.3, 0.35, 0.25)))
    if count == 0:
        return
    spacing = max(8, int(0.2 * size))
    slots = np.arange(2, size - 4, spacing)
    xs = np.sort(rng.choice(slots, min(count, len(slots)), replace=False)
                 + rng.integers(0, spacing // 2, min(count, len(slots))))
    xs = np.minimum(xs, size - 3)
    widths = rng.integers(1, 3, len(xs))
    height = rng.uniform(0.32, 0.5) * size
    pole_mask = np.zeros((size, size), dtype=bool)
    wire_mask = np.zeros((size, size), dtype=bool)
    tops = []
    for x, w in zip(xs.tolist(), widths.tolist(), strict=True):
        bottom = min(int(road_top[x] + 0.5) + int(rng.integers(0, 2)), size)
        top = max(1, int(round(bottom - height)) + int(rng.integers(-1, 2)))
        pole_mask[top:bottom, x : x + w] = True
        tops.append(top)
    n_wires = 1 + int(rng.random() < 0.5)
    drop = int(rng.integers(2, 5))
    if len(xs) == 1:  # one pole: wires run from its top to the farther image border
        x, w, top = int(xs[0]), int(widths[0]), tops[0]
        cols = np.arange(x + w, size) if x < size / 2 else np.arange(0, x)
        slope = rng.uniform(-0.15, 0.15)
        dist = np.abs(cols + 0.5 - (x + w / 2))
        for k in range(n_wires):
            rows = np.floor(top + 1 + k * drop + slope * dist + 0.5).astype(int)
            ok = (rows >= 0) & (rows < size)
            wire_mask[rows[ok], cols[ok]] = True
    else:
        for a in range(len(xs) - 1):
            start, stop = int(xs[a] + widths[a]), int(xs[a + 1])
            if stop <= start:
                continue
            cols = np.arange(start, stop)
            t = (cols + 0.5 - start) / (stop - start)
            sag = rng.uniform(0.3, max(0.5, (stop - start) / 8))
            for k in range(n_wires):
                y = tops[a] + 1 + k * drop + (tops[a + 1] - tops[a]) * t + 4 * sag * t * (1 - t)
                rows = np.clip(np.floor(y + 0.5).astype(int), 0, size - 1)
                wire_mask[rows, cols] = True
    pole = _apart(_colour(rng, (0.22, 0.22, 0.24), 0.1), sky)
    canvas.pixels(wire_mask, canvas.new(POLE, np.clip(pole * 0.6, 0.0, 1.0)))
    canvas.pixels(pole_mask, canvas.new(POLE, pole))


def _scene(rng: np.random.Generator, size: int, fields: dict[str, np.ndarray], pixel_of: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``(image float32 (size*size, 3), label uint8 (size, size))``."""
    px = size / 64.0
    sky = _colour(rng, _SKY_PALETTES[rng.integers(len(_SKY_PALETTES))], 0.08)
    terrain = _apart(_colour(rng, _TERRAIN_PALETTES[rng.integers(len(_TERRAIN_PALETTES))], 0.07), sky)
    road = _apart(np.clip(rng.uniform(0.18, 0.45) + rng.uniform(-0.03, 0.03, 3), 0.0, 1.0), terrain)
    foliage_base = _colour(rng, (0.70, 0.45, 0.10) if rng.random() < 0.15 else (0.20, 0.45, 0.15), 0.06)
    canvas = _Canvas(size, terrain)
    x = canvas.grid - size / 2

    # Sky above a tilted, undulating horizon; the road a band below the terrain.
    horizon = rng.uniform(0.28, 0.45) * size
    tilt = rng.uniform(-0.06, 0.06)
    amp, period, phase = rng.uniform(0.0, 0.03) * size, rng.uniform(0.5, 1.5) * size, rng.uniform(0, 2 * math.pi)
    horizon_y = horizon + tilt * x + amp * np.sin(2 * math.pi * canvas.grid / period + phase)
    road_top = rng.uniform(0.66, 0.78) * size
    road_tilt = rng.uniform(-0.05, 0.05)
    road_depth = rng.uniform(0.14, 0.3) * size
    road_top_y = road_top + road_tilt * x
    road_bottom_y = road_top_y + road_depth + rng.uniform(-0.04, 0.04) * x
    y = canvas.grid[:, None]
    canvas.ids[y < horizon_y[None, :]] = canvas.new(SKY, sky)
    canvas.ids[(y >= road_top_y[None, :]) & (y < road_bottom_y[None, :])] = canvas.new(ROAD, road)
    if rng.random() < 0.6:  # dashed centre line, labelled road
        marking = canvas.new(ROAD, _colour(rng, _MARKINGS[rng.integers(len(_MARKINGS))], 0.04))
        dash, gap, offset = rng.uniform(3, 5) * px, rng.uniform(3, 5) * px, rng.uniform(0, 8) * px
        thick = max(0.8, 0.04 * road_depth)
        for start in np.arange(-offset, size, dash + gap):
            mid = min(max(start + dash / 2, 0.0), size - 1.0)
            yc = road_top + road_tilt * (mid - size / 2) + road_depth / 2
            canvas.rect(start, yc - thick / 2, start + dash, yc + thick / 2, marking)

    # Houses and trees stand on the terrain; further (higher) ones are smaller and painted first.
    n_houses = int(rng.integers(1, 4))
    n_trees = int(rng.choice(4, p=(0.15, 0.35, 0.3, 0.2)))
    kinds = np.array([0] * n_houses + [1] * n_trees)
    centres = rng.uniform(-0.05, 1.05, len(kinds)) * size
    depth = rng.uniform(0.0, 1.0, len(kinds))
    sub = np.clip(np.round(centres * SUPERSAMPLE).astype(int), 0, canvas.hr - 1)
    near = road_top_y[sub] - 0.01 * size
    far = np.minimum(horizon_y[sub] + 0.05 * size, near)
    bases = far + depth * (near - far)
    for k in np.argsort(bases, kind="stable"):
        scale = 0.65 + 0.6 * depth[k]
        if kinds[k] == 0:
            _house(canvas, rng, centres[k], bases[k], scale, px, sky, terrain)
        else:
            _tree(canvas, rng, centres[k], bases[k], scale, px, foliage_base, sky, terrain)
    _poles_and_wires(canvas, rng, road_top_y[SUPERSAMPLE // 2 :: SUPERSAMPLE], sky)

    # Down to output pixels: subsample counts per object -> colour (mean) and class (majority).
    n_obj = len(canvas.classes)
    counts = np.bincount((pixel_of * n_obj + canvas.ids).ravel(), minlength=size * size * n_obj)
    counts = counts.reshape(size * size, n_obj).astype(np.float32)
    onehot = np.zeros((n_obj, len(CLASSES)), dtype=np.float32)
    onehot[np.arange(n_obj), canvas.classes] = 1.0
    class_counts = counts @ onehot
    label = class_counts.argmax(axis=1).astype(np.uint8)
    label[class_counts.max(axis=1) < MIN_AGREEMENT] = IGNORE_INDEX
    image = (counts / SUPERSAMPLE**2) @ np.asarray(canvas.colours, dtype=np.float32)

    # Per-class textures (weighted by each class's share of the pixel), lighting and noise.
    gain = rng.uniform(0.4, 1.6, (4, len(CLASSES))).astype(np.float32)
    coarse = rng.normal(0.0, 1.0, (5, 5)).astype(np.float32)
    grain = rng.standard_normal(size * size, dtype=np.float32)
    stripe = rng.uniform(2.0, 4.0) * px
    lf = (fields["up"] @ coarse @ fields["up"].T).ravel()
    stripes = np.sin(2 * math.pi * fields["rows"] / stripe + rng.uniform(0, 2 * math.pi)).astype(np.float32)
    ramp = np.clip(fields["rows"] / max(horizon, 1.0), 0.0, 1.0)
    texture = (np.outer(_TEX_LF * gain[0], lf) + np.outer(_TEX_HF * gain[1], grain)
               + np.outer(_TEX_ST * gain[2], stripes) + np.outer(_TEX_RAMP * gain[3], ramp))  # (K, S*S)
    image += ((class_counts / SUPERSAMPLE**2) * texture.T).sum(axis=1, keepdims=True)
    image *= np.float32(rng.uniform(0.85, 1.15))
    image += rng.standard_normal((size * size, 3), dtype=np.float32) * np.float32(rng.uniform(0.01, 0.04))
    return image, label.reshape(size, size)


def generate_scenes(n_images: int, seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 (N,3,size,size), labels uint8 (N,size,size))``; deterministic for the arguments.

    Labels are class ids ``0..len(CLASSES)-1`` and ``IGNORE_INDEX`` on mixed
    boundary pixels (see the module docstring for the rule).
    """
    if isinstance(n_images, bool) or not isinstance(n_images, (int, np.integer)) or n_images < 0:
        raise ConfigError(f"n_images must be an integer >= 0, got {n_images!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ConfigError(f"scene size must be an integer >= {MIN_SIZE} pixels, got {size!r}")
    size = int(size)
    images = np.empty((n_images, 3, size, size), dtype=np.uint8)
    labels = np.empty((n_images, size, size), dtype=np.uint8)
    hr = np.arange(size * SUPERSAMPLE) // SUPERSAMPLE
    pixel_of = hr[:, None] * size + hr[None, :]  # output pixel of every subsample
    rows = (np.arange(size, dtype=np.float32)[:, None] + 0.5) * np.ones((1, size), dtype=np.float32)
    fields = {"up": _upsample_matrix(5, size).astype(np.float32), "rows": rows.ravel()}
    children = np.random.SeedSequence(int(seed)).spawn(n_images)
    for i, child in enumerate(children):
        image, label = _scene(np.random.default_rng(child), size, fields, pixel_of)
        images[i] = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8).T.reshape(3, size, size)
        labels[i] = label
    return images, labels
