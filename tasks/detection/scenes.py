"""Procedurally generated object-detection scenes: several shapes per image, boxes and labels.

Each image holds ``min_objects``..``max_objects`` objects of 6 classes (disc,
square, triangle, cross, ring, bar; the silhouettes of
:mod:`tasks.classification.shapes` plus a bar), each a whole shape of one
random colour, at a random position and rotation. Object sizes are drawn
log-uniformly from sides of about 5 px to about 30 px at 64x64 (scaled with
``size``), so small objects, the hard case of detection and of detection KD,
are common. The background is a random colour with a gradient and a faint
low-frequency texture, under faint Gaussian blobs (clutter that is not an
object); pixel noise goes over everything.

Objects are painted in order, so later ones may cover earlier ones (partial
occlusion) and objects near an edge may be cut by the image border. The box of
an object is the tight box of its *visible* pixels (its mask, minus what later
objects cover, within the image). An object whose visible pixels are fewer than
``1 - MAX_HIDDEN`` (30%) of the pixels of its whole silhouette is dropped from
the annotations (it stays painted, as an unlabelled fragment).

Every factor is drawn from a numpy ``Generator`` seeded by ``seed`` before any
pixel is rendered, so a dataset is identical for the same arguments on every
run. Rendering is vectorised over objects; 1000 images at 64x64 take one to two
seconds on one CPU core.
"""

from __future__ import annotations

import math

import numpy as np

from bench.errors import ConfigError

#: class names; the label id of ``CLASSES[i]`` is ``i + 1`` (0 is the detector's background).
CLASSES = ("disc", "square", "triangle", "cross", "ring", "bar")
GENERATOR_VERSION = 1
#: an object more hidden than this (fraction of its silhouette's pixels) gets no annotation.
MAX_HIDDEN = 0.7
#: range of an object's half-size (centre to the unit circle), as a fraction of the image side:
#: 2.5..15 px at 64x64, i.e. boxes of about 5..30 px.
HALF_RANGE = (2.5 / 64, 15 / 64)
#: farthest point of any silhouette from its centre, in half-sizes (the triangle's base corners).
_REACH = 1.25
_RENDER_CHUNK = 256


def _disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v < 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(abs(u), abs(v)) < 0.8


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (v < 0.75) & (v > 1.7 * abs(u) - 0.95)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return ((abs(u) < 0.3) & (abs(v) < 1.0)) | ((abs(v) < 0.3) & (abs(u) < 1.0))


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 < 1.0) & (r2 > 0.55**2)


def _bar(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (abs(u) < 1.0) & (abs(v) < 0.28)


_SHAPES = (_disc, _square, _triangle, _cross, _ring, _bar)


def _render(kinds: np.ndarray, cx: np.ndarray, cy: np.ndarray, half: np.ndarray, theta: np.ndarray,
            size: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of objects: ``(in-image masks bool (n,size,size), whole-silhouette pixel counts (n,))``.

    Each silhouette is sampled at pixel centres on a grid padded by the largest
    reach of any object, so the count includes the part beyond the image border
    and the visible fraction of a cut object is measured against its whole shape.
    """
    n = len(kinds)
    masks = np.zeros((n, size, size), dtype=bool)
    full = np.zeros(n, dtype=np.int64)
    if n == 0:
        return masks, full
    margin = int(math.ceil(_REACH * float(half.max()))) + 1
    grid = np.arange(-margin, size + margin, dtype=np.float32) + np.float32(0.5)
    inv = (1.0 / half).astype(np.float32)
    cos, sin = np.cos(theta).astype(np.float32), np.sin(theta).astype(np.float32)
    cx, cy = cx.astype(np.float32), cy.astype(np.float32)
    inner = slice(margin, margin + size)
    for kind, silhouette in enumerate(_SHAPES):
        of_kind = np.flatnonzero(kinds == kind)
        for start in range(0, len(of_kind), _RENDER_CHUNK):
            idx = of_kind[start : start + _RENDER_CHUNK]
            dx = ((grid[None, :] - cx[idx, None]) * inv[idx, None])[:, None, :]  # (k,1,G)
            dy = ((grid[None, :] - cy[idx, None]) * inv[idx, None])[:, :, None]  # (k,G,1)
            c, s = cos[idx, None, None], sin[idx, None, None]
            m = silhouette(c * dx + s * dy, c * dy - s * dx)
            full[idx] = m.sum(axis=(1, 2))
            masks[idx] = m[:, inner, inner]
    return masks, full


def shape_mask(kind: int, cx: float, cy: float, half: float, theta: float = 0.0, size: int = 64) -> np.ndarray:
    """Boolean mask (size,size) of one silhouette ``CLASSES[kind]`` centred at pixel coordinates (cx, cy).

    ``half`` is the half-size in pixels and ``theta`` the rotation in radians;
    pixel (row y, column x) is inside when its centre (x+0.5, y+0.5) is. The
    same code renders the generated scenes.
    """
    if not 0 <= kind < len(CLASSES):
        raise ConfigError(f"shape kind must be in 0..{len(CLASSES) - 1}, got {kind!r}")
    masks, _ = _render(np.array([kind]), np.array([cx], dtype=np.float64), np.array([cy], dtype=np.float64),
                       np.array([half], dtype=np.float64), np.array([theta], dtype=np.float64), size)
    return masks[0]


def boxes_of_masks(masks: np.ndarray) -> np.ndarray:
    """Tight xyxy boxes (n,4) float32 of boolean masks (n,H,W), in pixel-edge coordinates.

    A box runs from the left/top edge of its first pixel to the right/bottom
    edge of its last one (a single pixel at (y, x) gives ``[x, y, x+1, y+1]``);
    an empty mask gives zeros.
    """
    n, h, w = masks.shape
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    y1, y2 = rows.argmax(axis=1), h - rows[:, ::-1].argmax(axis=1)
    x1, x2 = cols.argmax(axis=1), w - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    boxes[~rows.any(axis=1)] = 0.0
    return boxes


def _upsample_matrix(cells: int, size: int) -> np.ndarray:
    """Bilinear interpolation weights (size, cells) from a coarse grid to ``size`` pixels."""
    t = np.linspace(0.0, cells - 1.0, size)
    eye = np.eye(cells)
    return np.stack([np.interp(t, np.arange(cells), eye[j]) for j in range(cells)], axis=1)


def _check(n_images: int, size: int, min_objects: int, max_objects: int, clutter: int, noise_std: float) -> None:
    if n_images < 0:
        raise ConfigError(f"n_images must be >= 0, got {n_images!r}")
    if size < 16:
        raise ConfigError(f"scene size must be >= 16 pixels, got {size!r}")
    if not 1 <= min_objects <= max_objects:
        raise ConfigError(f"need 1 <= min_objects <= max_objects, got {min_objects!r} and {max_objects!r}")
    if clutter < 0 or noise_std < 0:
        raise ConfigError(f"clutter and noise_std must be >= 0, got {clutter!r} and {noise_std!r}")


def generate_scenes_with_masks(
    n_images: int, seed: int, size: int = 64, min_objects: int = 2, max_objects: int = 5,
    clutter: int = 4, noise_std: float = 0.04,
) -> tuple[np.ndarray, list[dict], list[np.ndarray]]:
    """:func:`generate_scenes` plus each annotated object's visible mask, bool (K,size,size) per image.

    ``annotations[i]["boxes"][k]`` is the tight box of ``masks[i][k]``.
    """
    _check(n_images, size, min_objects, max_objects, clutter, noise_std)
    rng = np.random.default_rng(seed)
    n, m = n_images, max_objects
    # Every random factor first, in a fixed order: rendering below draws nothing.
    counts = rng.integers(min_objects, max_objects + 1, n)
    valid = np.arange(m)[None, :] < counts[:, None]  # (n,m): slot k holds an object
    kinds = rng.integers(0, len(CLASSES), (n, m))
    lo, hi = HALF_RANGE
    half = size * np.exp(rng.uniform(math.log(lo), math.log(hi), (n, m)))
    cx = rng.uniform(0.05, 0.95, (n, m)) * size
    cy = rng.uniform(0.05, 0.95, (n, m)) * size
    theta = rng.uniform(0.0, 2 * math.pi, (n, m))
    fg = rng.uniform(0.0, 1.0, (n, m, 3))
    bg = rng.uniform(0.2, 0.8, (n, 3))
    grad = rng.uniform(-0.25, 0.25, (n, 3, 2))
    coarse = rng.normal(0.0, 0.06, (n, 3, 5, 5))
    blob_xy = rng.uniform(0.0, size, (n, clutter, 2))
    blob_sigma = rng.uniform(1.5, 0.1 * size, (n, clutter))
    blob_alpha = rng.uniform(0.1, 0.3, (n, clutter))
    blob_colour = rng.uniform(0.0, 1.0, (n, clutter, 3))
    noise = rng.standard_normal((n, 3, size, size), dtype=np.float32)

    # Objects keep contrast with the background: too close a colour moves 0.45 away per channel.
    close = np.abs(fg - bg[:, None, :]).sum(axis=2, keepdims=True) < 0.6
    away = np.clip(bg[:, None, :] + np.where(fg >= bg[:, None, :], 0.45, -0.45), 0.0, 1.0)
    fg = np.where(close, away, fg).astype(np.float32)

    # Background: colour, gradient, faint low-frequency texture, faint blobs.
    pix = (np.arange(size, dtype=np.float32) + 0.5)
    ramp = pix / size - 0.5
    up = _upsample_matrix(5, size).astype(np.float32)
    img = (bg[:, :, None, None] + grad[:, :, 0, None, None] * ramp[None, None, None, :]
           + grad[:, :, 1, None, None] * ramp[None, None, :, None]).astype(np.float32)
    img += np.einsum("ia,ncab,jb->ncij", up, coarse.astype(np.float32), up)
    for b in range(clutter):
        d2 = ((pix[None, None, :] - blob_xy[:, b, 0, None, None]) ** 2
              + (pix[None, :, None] - blob_xy[:, b, 1, None, None]) ** 2)
        a = (blob_alpha[:, b, None, None] * np.exp(-d2 / (2 * blob_sigma[:, b, None, None] ** 2)))[:, None]
        img = (img * (1 - a) + blob_colour[:, b, :, None, None] * a).astype(np.float32)

    # Objects, painted in slot order: later slots cover earlier ones.
    slot = np.flatnonzero(valid.ravel())
    masks = np.zeros((n * m, size, size), dtype=bool)
    full = np.zeros(n * m, dtype=np.int64)
    masks[slot], full[slot] = _render(kinds.ravel()[slot], cx.ravel()[slot], cy.ravel()[slot],
                                      half.ravel()[slot], theta.ravel()[slot], size)
    masks = masks.reshape(n, m, size, size)
    full = full.reshape(n, m)
    for k in range(m):
        img = np.where(masks[:, k, None], fg[:, k, :, None, None], img)

    # Visible part of each object: its mask minus everything painted after it.
    visible = np.empty_like(masks)
    covered = np.zeros((n, size, size), dtype=bool)
    for k in reversed(range(m)):
        visible[:, k] = masks[:, k] & ~covered
        covered |= masks[:, k]
    seen = visible.sum(axis=(2, 3))
    keep = valid & (seen > 0) & (seen >= (1.0 - MAX_HIDDEN) * full)
    boxes = boxes_of_masks(visible.reshape(n * m, size, size)).reshape(n, m, 4)

    img += noise * np.float32(noise_std)
    images = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    annotations, object_masks = [], []
    for i in range(n):
        sel = np.flatnonzero(keep[i])
        annotations.append({"boxes": boxes[i, sel].reshape(-1, 4), "labels": (kinds[i, sel] + 1).astype(np.int64)})
        object_masks.append(visible[i, sel])
    return images, annotations, object_masks


def generate_scenes(
    n_images: int, seed: int, size: int = 64, min_objects: int = 2, max_objects: int = 5,
    clutter: int = 4, noise_std: float = 0.04,
) -> tuple[np.ndarray, list[dict]]:
    """Return ``(images uint8 (N,3,size,size), annotations)``; deterministic for the arguments.

    ``annotations[i]`` is ``{"boxes": float32 (K,4) xyxy pixels, "labels":
    int64 (K,) in 1..len(CLASSES)}``, in painting order (bottom to top). K can
    be below ``min_objects`` when an object is more than ``MAX_HIDDEN`` hidden.
    ``clutter`` is the number of faint blobs per image, ``noise_std`` the pixel
    noise (intensities in [0, 1]).
    """
    images, annotations, _ = generate_scenes_with_masks(n_images, seed, size, min_objects, max_objects,
                                                        clutter, noise_std)
    return images, annotations
