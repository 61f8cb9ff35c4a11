"""Keypoint Gaussian heatmaps: encoding, sub-pixel decoding and the SimpleBaseline loss.

Coordinate convention (used identically by :func:`encode` and :func:`decode`):

* keypoints are ``(x, y)`` in input pixels of an ``input_hw = (H, W)`` image; heatmaps are
  ``heatmap_hw = (h, w)``, so the strides are ``W / w`` and ``H / h``.
* a keypoint maps to the heatmap coordinate ``u = x * w / W``, ``v = y * h / H`` and back with
  ``x = u * W / w``, ``y = v * H / h`` (a pure scale, no half-pixel shift), where heatmap pixel
  ``(i, j)`` (row, column) is the sample at coordinate ``(u, v) = (j, i)`` — the integer
  coordinate is the pixel *centre*, and pixel ``j`` covers ``[j - 0.5, j + 0.5)``.
* a keypoint is "inside the heatmap" when ``-0.5 <= u < w - 0.5`` and ``-0.5 <= v < h - 0.5``
  (it falls in some heatmap pixel).

``encode`` draws an unnormalised, untruncated Gaussian ``exp(-((j-u)^2 + (i-v)^2) / (2 sigma^2))``
(``sigma`` in heatmap pixels, peak 1 at the sub-pixel keypoint itself). ``decode`` takes the
argmax and refines it per axis by fitting a parabola to the *log* heatmap through the peak and
its two neighbours, offset ``0.5 * (l[-1] - l[+1]) / (l[-1] - 2 l[0] + l[+1])`` clamped to
``[-0.5, 0.5]``. A Gaussian's log is exactly quadratic and separable, so this equals DARK's
second-order Taylor step (without DARK's heatmap blurring) and recovers the centre of an
encoded Gaussian to float precision: the round trip is accurate to < 0.01 input pixel
(tested) for keypoints at least one heatmap pixel inside the border. No refinement is applied
along an axis where the peak lies on the border, or where the peak value is not positive.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

_LOG_FLOOR = 1e-10


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    return torch.as_tensor(np.asarray(value))


def encode(keypoints: Any, heatmap_hw: tuple[int, int], input_hw: tuple[int, int],
           sigma: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian target heatmaps ``(N, K, h, w)`` float32 and target weights ``(N, K)`` float32.

    ``keypoints`` is ``(N, K, 3)`` ``[x, y, visibility]`` in input pixels. The weight is 1 where
    ``visibility > 0`` and the keypoint is inside the heatmap (see the module docstring), else 0,
    and then that heatmap is all zeros.
    """
    kp = _as_tensor(keypoints).to(torch.float64)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must be (N, K, 3), got {tuple(kp.shape)}")
    h, w = int(heatmap_hw[0]), int(heatmap_hw[1])
    H, W = float(input_hw[0]), float(input_hw[1])
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    u = kp[..., 0] * (w / W)
    v = kp[..., 1] * (h / H)
    inside = (u >= -0.5) & (u < w - 0.5) & (v >= -0.5) & (v < h - 0.5)
    weight = ((kp[..., 2] > 0) & inside).to(torch.float32)
    cols = torch.arange(w, dtype=torch.float64, device=kp.device)
    rows = torch.arange(h, dtype=torch.float64, device=kp.device)
    gx = torch.exp(-((cols - u[..., None]) ** 2) / (2.0 * sigma ** 2))  # (N, K, w)
    gy = torch.exp(-((rows - v[..., None]) ** 2) / (2.0 * sigma ** 2))  # (N, K, h)
    heatmaps = (gy[..., :, None] * gx[..., None, :]).to(torch.float32)
    heatmaps = heatmaps * weight[..., None, None]
    return heatmaps, weight


def _axis_offset(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Vertex of the parabola through log values at -1, 0, +1 (0 where it is not a maximum)."""
    l0, l1, l2 = (torch.log(t.clamp_min(_LOG_FLOOR)) for t in (left, centre, right))
    curvature = l0 - 2.0 * l1 + l2
    safe = torch.where(curvature < 0, curvature, torch.full_like(curvature, -1.0))
    offset = 0.5 * (l0 - l2) / safe
    return torch.where(curvature < 0, offset, torch.zeros_like(offset)).clamp(-0.5, 0.5)


def decode(heatmaps: Any, input_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoint coordinates ``(N, K, 2)`` ``[x, y]`` in input pixels and scores ``(N, K)``.

    The score is the heatmap maximum; the location is the argmax refined by the log-parabola
    step of the module docstring, then scaled to input pixels.
    """
    hm = _as_tensor(heatmaps).to(torch.float64)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, h, w), got {tuple(hm.shape)}")
    n, k, h, w = hm.shape
    H, W = float(input_hw[0]), float(input_hw[1])
    flat = hm.reshape(n, k, h * w)
    scores, index = flat.max(dim=-1)
    row = torch.div(index, w, rounding_mode="floor")
    col = index % w

    def at(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return flat.gather(-1, (r.clamp(0, h - 1) * w + c.clamp(0, w - 1))[..., None])[..., 0]

    positive = scores > 0
    dx = _axis_offset(at(row, col - 1), scores, at(row, col + 1))
    dx = torch.where(positive & (col > 0) & (col < w - 1), dx, torch.zeros_like(dx))
    dy = _axis_offset(at(row - 1, col), scores, at(row + 1, col))
    dy = torch.where(positive & (row > 0) & (row < h - 1), dy, torch.zeros_like(dy))
    x = (col.to(torch.float64) + dx) * (W / w)
    y = (row.to(torch.float64) + dy) * (H / h)
    coords = torch.stack([x, y], dim=-1).to(torch.float32)
    return coords, scores.to(torch.float32)


def heatmap_mse(pred: torch.Tensor, target: torch.Tensor, target_weight: torch.Tensor) -> torch.Tensor:
    """``JointsMSELoss`` of SimpleBaseline / FPD (``use_target_weight=True``).

    ``loss = (1/K) * sum_k 0.5 * mean_{n, pixels} (w[n,k] * pred[n,k] - w[n,k] * target[n,k])^2``,
    i.e. ``0.5 * mean over all (n, k, pixel) of (w[n,k] * (pred - target))^2`` with ``pred`` and
    ``target`` ``(N, K, h, w)`` and ``target_weight`` ``(N, K)`` (or ``(N, K, 1)`` as in the
    reference code). Gradients flow to ``pred`` only.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be (N, K, h, w)")
    n, k = pred.shape[:2]
    weight = target_weight.reshape(n, k, 1, 1).to(pred.dtype)
    diff = (pred - target.detach().to(pred.dtype)) * weight
    return 0.5 * diff.pow(2).mean()
