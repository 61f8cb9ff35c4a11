"""Procedurally generated classification dataset with classes that share structure.

``shapes20`` has 20 classes, the product of 5 silhouettes (disc, square,
triangle, cross, ring) and 4 fill textures (solid, horizontal stripes, vertical
stripes, checker). Classes that share a silhouette or a texture look alike, so a
teacher's soft labels carry information about which classes are near (Hinton et
al. 2015). Every image varies in position, scale, rotation, colours, background
clutter (faint distractor shapes), an occluding bar and pixel noise. A fraction
of training labels is flipped to a random class (never in val/test): KD's gain
grows with label noise (Yuan et al. 2020).

Every factor is drawn from a numpy ``Generator`` seeded by (seed, split), so a
dataset is identical for the same spec on every machine; textures are chosen to
be invariant under horizontal flips, the suite's augmentation.
"""

from __future__ import annotations

import numpy as np

SILHOUETTES = ("disc", "square", "triangle", "cross", "ring")
TEXTURES = ("solid", "hstripes", "vstripes", "checker")
CLASSES = tuple(f"{s}-{t}" for s in SILHOUETTES for t in TEXTURES)
GENERATOR_VERSION = 1


def _silhouette(kind: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Soft mask (N,H,W) of each sample's silhouette in its rotated unit frame (u, v)."""
    r = np.sqrt(u**2 + v**2)
    masks = np.stack(
        [
            r < 1.0,
            np.maximum(abs(u), abs(v)) < 0.85,
            (v < 0.75) & (v > 1.7 * abs(u) - 0.95),
            ((abs(u) < 0.3) & (abs(v) < 1.0)) | ((abs(v) < 0.3) & (abs(u) < 1.0)),
            (r < 1.0) & (r > 0.55),
        ]
    )
    return np.take_along_axis(masks, kind[None, :, None, None], axis=0)[0]


def _texture(kind: np.ndarray, x: np.ndarray, y: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Fill pattern (N,H,W) in image coordinates, each in [0, 1]."""
    p = period[:, None, None]
    hs = (np.floor(y / p) % 2).astype(np.float32)
    vs = (np.floor(x / p) % 2).astype(np.float32)
    patterns = np.stack([np.ones_like(hs), hs, vs, np.abs(hs - vs)])
    return np.take_along_axis(patterns, kind[None, :, None, None], axis=0)[0]


def generate(n_per_class: int, seed: int, size: int = 32, label_noise: float = 0.0,
             noise_std: float = 0.08, clutter: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 (N,3,size,size), labels int64 (N,))``, classes balanced."""
    rng = np.random.default_rng(seed)
    n_classes = len(CLASSES)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    rng.shuffle(labels)
    n = len(labels)
    grid = (np.arange(size, dtype=np.float32) + 0.5)
    y, x = np.meshgrid(grid, grid, indexing="ij")
    x = np.broadcast_to(x, (n, size, size))
    y = np.broadcast_to(y, (n, size, size))

    def place(scale_lo: float, scale_hi: float):
        cx = rng.uniform(0.3, 0.7, n) * size
        cy = rng.uniform(0.3, 0.7, n) * size
        scale = rng.uniform(scale_lo, scale_hi, n) * size
        theta = rng.uniform(-np.pi / 5, np.pi / 5, n)
        dx = (x - cx[:, None, None]) / scale[:, None, None]
        dy = (y - cy[:, None, None]) / scale[:, None, None]
        c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
        return c * dx + s * dy, -s * dx + c * dy

    def colour():
        return rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)[:, :, None, None]

    # Background: a random colour with a smooth gradient.
    bg = colour() * 0.6 + 0.2
    grad = rng.uniform(-0.3, 0.3, (n, 3, 1, 1)) * ((x - size / 2) / size)[:, None]
    img = np.broadcast_to(bg, (n, 3, size, size)) + grad
    # Clutter: faint shapes of random classes, drawn before the object.
    for _ in range(clutter):
        u, v = place(0.12, 0.22)
        m = _silhouette(rng.integers(0, len(SILHOUETTES), n), u, v)[:, None]
        img = np.where(m, img * 0.5 + colour() * 0.5, img)
    # The object: silhouette x texture of its class, two colours.
    u, v = place(0.22, 0.36)
    mask = _silhouette(labels // len(TEXTURES), u, v)[:, None]
    tex = _texture(labels % len(TEXTURES), x, y, rng.integers(2, 4, n).astype(np.float32))[:, None]
    fg1, fg2 = colour(), colour()
    fg2 = np.where(np.abs(fg1 - fg2).sum(1, keepdims=True) < 0.6, 1.0 - fg1, fg2)
    img = np.where(mask, tex * fg1 + (1 - tex) * fg2, img)
    # An occluding bar over part of the image.
    bar_y = rng.uniform(0, size, n)[:, None, None]
    bar_h = rng.uniform(2, 6, n)[:, None, None]
    occluded = (np.abs(y - bar_y) < bar_h / 2)[:, None] & (rng.uniform(0, 1, n) < 0.5)[:, None, None, None]
    img = np.where(occluded, colour() * 0.8, img)
    img = img + rng.normal(0, noise_std, img.shape)
    images = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    if label_noise > 0:
        flip = rng.uniform(0, 1, n) < label_noise
        labels = np.where(flip, rng.integers(0, n_classes, n), labels)
    return images, labels.astype(np.int64)
