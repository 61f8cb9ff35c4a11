"""Procedurally generated articulated figures: top-down pose crops with COCO-style keypoints.

Each crop (``height`` x ``width``, default 64x48) holds one *main* figure,
roughly centred: a stick figure of thick lines (torso, arms, legs) with a disc
for the head, at a random pose (joint angles), scale, rotation (about +-25
degrees), limb thickness and colours. The figure faces the viewer, so its
*left* side (``l_*`` keypoints) lies towards image +x before rotation; a
horizontal flip therefore has to swap the :data:`FLIP_PAIRS`.

Around it: a background colour with a gradient, clutter (thin random line
segments and faint discs, look-alikes of limbs), sometimes a partial second
figure near the left or right edge (painted behind or in front of the main
one), sometimes an occluding bar, and pixel noise. About a fifth of the main
figures are shifted and/or enlarged so that part of them leaves the crop
(truncation).

Keypoints are float32 ``(N, K, 3)`` rows ``(x, y, v)`` in pixel coordinates
where pixel (row r, column c) covers ``[c, c+1) x [r, r+1)`` (its centre is at
``(c+0.5, r+0.5)``), and ``v`` follows COCO:

* ``v = 0``: not labelled: the joint lies outside the crop (then ``x = y = 0``);
* ``v = 1``: labelled but occluded: inside the crop, under a second figure
  painted in front or an occluding bar (the pixel holding the joint is covered);
* ``v = 2``: labelled and visible. (A figure's own limbs crossing a joint do not
  count as occlusion.)

Every factor is drawn from a numpy ``Generator`` seeded by ``seed`` before any
pixel is rendered, so a dataset is identical for the same ``(n, seed, height,
width)``. Rendering is vectorised over crops in chunks; 1000 crops at 64x48
take about a second on one CPU core.
"""

from __future__ import annotations

import math

import numpy as np

from bench.errors import ConfigError

KEYPOINTS = (
    "head", "neck",
    "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)
#: bones, as pairs of indices into :data:`KEYPOINTS` (0-based; COCO files store them 1-based).
SKELETON = (
    (0, 1), (1, 2), (1, 3), (2, 4), (4, 6), (3, 5), (5, 7),
    (2, 8), (3, 9), (8, 9), (8, 10), (10, 12), (9, 11), (11, 13),
)
#: per-keypoint OKS sigmas, COCO's values for the matching joints (head: nose; neck: shoulders).
SIGMAS = (0.026, 0.079, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
          0.107, 0.107, 0.087, 0.087, 0.089, 0.089)
#: left/right index pairs swapped by a horizontal flip.
FLIP_PAIRS = ((2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13))
GENERATOR_VERSION = 1

K = len(KEYPOINTS)
#: limbs drawn as thick lines (index pairs); the torso is drawn separately, from the neck to mid-hip.
_LIMBS = ((1, 2), (1, 3), (2, 4), (4, 6), (3, 5), (5, 7), (8, 9), (8, 10), (10, 12), (9, 11), (11, 13))
_CLUTTER_LINES = 4
_CLUTTER_DISCS = 2
_CHUNK = 256


def _pose(rng: np.random.Generator, n: int) -> np.ndarray:
    """Keypoints (n,K,2) of upright figures in body units, pelvis at the origin, y down, left at +x."""
    lean = rng.normal(0.0, 0.15, n)
    torso = rng.uniform(0.9, 1.1, n)
    neck_len = rng.uniform(0.3, 0.4, n)
    shoulder = rng.uniform(0.25, 0.35, n)
    hip = rng.uniform(0.15, 0.22, n)
    upper_arm, fore_arm = rng.uniform(0.4, 0.5, (2, n, 2))
    thigh, shin = rng.uniform(0.45, 0.55, (2, n, 2))
    # angles from "straight down", positive = outwards (towards the figure's own side)
    arm_up = rng.uniform(-0.4, 2.6, (n, 2))
    arm_bend = rng.uniform(-2.2, 0.5, (n, 2))
    leg_up = rng.uniform(-0.3, 0.9, (n, 2))
    leg_bend = rng.uniform(-0.9, 0.9, (n, 2))

    kp = np.zeros((n, K, 2))
    down = np.stack([np.sin(lean), np.cos(lean)], axis=1)  # torso direction, pelvis -> below
    left = np.stack([np.cos(lean), -np.sin(lean)], axis=1)
    neck = -down * torso[:, None]
    kp[:, 1] = neck
    kp[:, 0] = neck - down * neck_len[:, None]
    side = np.array([1.0, -1.0])  # l, r

    def direction(angle: np.ndarray, s: float) -> np.ndarray:  # (n,) -> (n,2) unit vector
        return down * np.cos(angle)[:, None] + left * (s * np.sin(angle))[:, None]

    for j, s in enumerate(side):
        kp[:, 2 + j] = neck + left * (s * shoulder)[:, None]
        kp[:, 4 + j] = kp[:, 2 + j] + direction(arm_up[:, j], s) * upper_arm[:, j, None]
        kp[:, 6 + j] = kp[:, 4 + j] + direction(arm_up[:, j] + arm_bend[:, j], s) * fore_arm[:, j, None]
        kp[:, 8 + j] = left * (s * hip)[:, None]
        kp[:, 10 + j] = kp[:, 8 + j] + direction(leg_up[:, j], s) * thigh[:, j, None]
        kp[:, 12 + j] = kp[:, 10 + j] + direction(leg_up[:, j] + leg_bend[:, j], s) * shin[:, j, None]
    return kp


def _place(kp: np.ndarray, theta: np.ndarray, unit: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Rotate by theta, scale by unit pixels and put the keypoints' box centre at (cx, cy)."""
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    x = (c * kp[..., 0] - s * kp[..., 1]) * unit[:, None]
    y = (s * kp[..., 0] + c * kp[..., 1]) * unit[:, None]
    x += (cx - (x.max(1) + x.min(1)) / 2)[:, None]
    y += (cy - (y.max(1) + y.min(1)) / 2)[:, None]
    return np.stack([x, y], axis=2)


def _segment(ax, ay, bx, by, radius, px, py) -> np.ndarray:
    """Pixels (n,H,W) within ``radius`` of segments a->b (each (n,)); px (W,), py (H,) pixel centres."""
    ax, ay, bx, by, radius = (np.asarray(v, dtype=np.float32)[:, None, None] for v in (ax, ay, bx, by, radius))
    dx, dy = bx - ax, by - ay
    qx, qy = px[None, None, :] - ax, py[None, :, None] - ay
    t = np.clip((qx * dx + qy * dy) / np.maximum(dx * dx + dy * dy, np.float32(1e-6)), 0.0, 1.0)
    ex, ey = qx - t * dx, qy - t * dy
    return ex * ex + ey * ey < radius * radius


def _figure_mask(kp, limb_r, torso_r, head_r, px, py):
    """Masks (n,H,W) of (torso+limbs, head) for figures with pixel keypoints kp (n,K,2)."""
    mid_hip = (kp[:, 8] + kp[:, 9]) / 2
    body = _segment(kp[:, 1, 0], kp[:, 1, 1], mid_hip[:, 0], mid_hip[:, 1], torso_r, px, py)
    for a, b in _LIMBS:
        body |= _segment(kp[:, a, 0], kp[:, a, 1], kp[:, b, 0], kp[:, b, 1], limb_r, px, py)
    head = _segment(kp[:, 0, 0], kp[:, 0, 1], kp[:, 0, 0], kp[:, 0, 1], head_r, px, py)
    return body, head


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return np.where(mask[:, None], colour[:, :, None, None].astype(np.float32), img)


def generate_crops(n: int, seed: int, height: int = 64, width: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 (n,3,height,width), keypoints float32 (n,K,3))``; deterministic for the arguments.

    See the module docstring for the keypoint conventions (pixel coordinates,
    COCO visibility 0/1/2, ``x = y = 0`` where ``v = 0``).
    """
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n!r}")
    if height < 16 or width < 16:
        raise ConfigError(f"crop size must be at least 16x16 pixels, got {height}x{width}")
    rng = np.random.default_rng(seed)
    h, w = height, width
    # Every random factor first, in a fixed order: rendering below draws nothing.
    main = _pose(rng, n)
    theta = rng.uniform(-0.45, 0.45, n)
    # a figure spans about 2.6 body units from head top to feet
    unit = h * rng.uniform(0.62, 0.92, n) / 2.6
    truncate = rng.uniform(size=n) < 0.2
    unit = np.where(truncate, unit * rng.uniform(1.0, 1.4, n), unit)
    shift_angle = rng.uniform(0.0, 2 * math.pi, n)
    shift = np.where(truncate, rng.uniform(0.15, 0.35, n) * h, 0.0)
    cx = w / 2 + rng.normal(0.0, 0.04 * w, n) + shift * np.cos(shift_angle)
    cy = h / 2 + rng.normal(0.0, 0.04 * h, n) + shift * np.sin(shift_angle)
    limb_r = unit * rng.uniform(0.07, 0.12, n)
    torso_r = limb_r * rng.uniform(1.6, 2.4, n)
    head_r = unit * rng.uniform(0.16, 0.22, n)
    colours = rng.uniform(0.0, 1.0, (n, 2, 3))  # body, head

    other = _pose(rng, n)
    has_other = rng.uniform(size=n) < 0.3
    other_front = rng.uniform(size=n) < 0.5
    o_theta = rng.uniform(-0.45, 0.45, n)
    o_unit = h * rng.uniform(0.62, 0.92, n) / 2.6
    o_side = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    o_cx = w / 2 + o_side * rng.uniform(0.55, 0.85, n) * w
    o_cy = h / 2 + rng.normal(0.0, 0.08 * h, n)
    o_limb_r = o_unit * rng.uniform(0.07, 0.12, n)
    o_torso_r = o_limb_r * rng.uniform(1.6, 2.4, n)
    o_head_r = o_unit * rng.uniform(0.16, 0.22, n)
    o_colours = rng.uniform(0.0, 1.0, (n, 2, 3))

    has_bar = rng.uniform(size=n) < 0.3
    bar_angle = rng.uniform(0.0, math.pi, n)
    bar_len = rng.uniform(0.5, 1.2, n) * h
    bar_r = rng.uniform(0.06, 0.12, n) * w
    bar_x = w / 2 + rng.uniform(-0.3, 0.3, n) * w
    bar_y = h / 2 + rng.uniform(-0.3, 0.3, n) * h
    bar_colour = rng.uniform(0.0, 1.0, (n, 3))

    bg = rng.uniform(0.15, 0.85, (n, 3))
    grad = rng.uniform(-0.25, 0.25, (n, 3, 2))
    line_xy = rng.uniform(0.0, 1.0, (n, _CLUTTER_LINES, 4)) * np.array([w, h, w, h])
    line_r = rng.uniform(0.5, 1.5, (n, _CLUTTER_LINES))
    line_colour = rng.uniform(0.0, 1.0, (n, _CLUTTER_LINES, 3))
    disc_xy = rng.uniform(0.0, 1.0, (n, _CLUTTER_DISCS, 2)) * np.array([w, h])
    disc_r = rng.uniform(1.5, 0.15 * w, (n, _CLUTTER_DISCS))
    disc_alpha = rng.uniform(0.15, 0.4, (n, _CLUTTER_DISCS))
    disc_colour = rng.uniform(0.0, 1.0, (n, _CLUTTER_DISCS, 3))
    noise = rng.standard_normal((n, 3, h, w), dtype=np.float32)

    # Figures keep contrast with the background: a too-close colour moves 0.45 away per channel.
    def contrast(c: np.ndarray) -> np.ndarray:
        close = np.abs(c - bg[:, None, :]).sum(axis=2, keepdims=True) < 0.6
        away = np.clip(bg[:, None, :] + np.where(c >= bg[:, None, :], 0.45, -0.45), 0.0, 1.0)
        return np.where(close, away, c)

    colours, o_colours = contrast(colours), contrast(o_colours)
    kp = _place(main, theta, unit, cx, cy)
    o_kp = _place(other, o_theta, o_unit, o_cx, o_cy)

    px = np.arange(w, dtype=np.float32) + np.float32(0.5)
    py = np.arange(h, dtype=np.float32) + np.float32(0.5)
    images = np.empty((n, 3, h, w), dtype=np.uint8)
    occluded = np.zeros((n, K), dtype=bool)
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
    col = np.clip(np.floor(kp[..., 0]), 0, w - 1).astype(np.int64)
    row = np.clip(np.floor(kp[..., 1]), 0, h - 1).astype(np.int64)
    for start in range(0, n, _CHUNK):
        s = slice(start, min(start + _CHUNK, n))
        m = s.stop - s.start
        img = (bg[s, :, None, None] + grad[s, :, 0, None, None] * (px / w - 0.5)[None, None, None, :]
               + grad[s, :, 1, None, None] * (py / h - 0.5)[None, None, :, None]).astype(np.float32)
        for k in range(_CLUTTER_DISCS):
            a = _segment(disc_xy[s, k, 0], disc_xy[s, k, 1], disc_xy[s, k, 0], disc_xy[s, k, 1],
                         disc_r[s, k], px, py)[:, None] * disc_alpha[s, k, None, None, None].astype(np.float32)
            img = img * (1 - a) + disc_colour[s, k, :, None, None].astype(np.float32) * a
        for k in range(_CLUTTER_LINES):
            x1, y1, x2, y2 = line_xy[s, k].T
            img = _paint(img, _segment(x1, y1, x2, y2, line_r[s, k], px, py), line_colour[s, k])
        o_body, o_head = _figure_mask(o_kp[s], o_limb_r[s], o_torso_r[s], o_head_r[s], px, py)
        o_body &= has_other[s, None, None]
        o_head &= has_other[s, None, None]
        back = ~other_front[s, None, None]
        img = _paint(img, o_body & back, o_colours[s, 0])
        img = _paint(img, o_head & back, o_colours[s, 1])
        body, head = _figure_mask(kp[s], limb_r[s], torso_r[s], head_r[s], px, py)
        img = _paint(img, body, colours[s, 0])
        img = _paint(img, head, colours[s, 1])
        front = other_front[s, None, None]
        img = _paint(img, o_body & front, o_colours[s, 0])
        img = _paint(img, o_head & front, o_colours[s, 1])
        bx, by = np.cos(bar_angle[s]) * bar_len[s] / 2, np.sin(bar_angle[s]) * bar_len[s] / 2
        bar = _segment(bar_x[s] - bx, bar_y[s] - by, bar_x[s] + bx, bar_y[s] + by, bar_r[s], px, py)
        bar &= has_bar[s, None, None]
        img = _paint(img, bar, bar_colour[s])
        cover = ((o_body | o_head) & front) | bar  # (m,H,W): painted over the main figure
        occluded[s] = cover[np.arange(m)[:, None], row[s], col[s]]
        img += noise[s] * np.float32(0.03)
        images[s] = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)

    v = np.where(inside, np.where(occluded, 1, 2), 0)
    keypoints = np.zeros((n, K, 3), dtype=np.float32)
    keypoints[..., :2] = np.where(inside[..., None], kp, 0.0)
    keypoints[..., 2] = v
    return images, keypoints
