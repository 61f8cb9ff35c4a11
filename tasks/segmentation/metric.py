"""Dataset-level semantic-segmentation metrics from an accumulated confusion matrix.

``ConfusionMatrix(num_classes)`` accumulates, over all batches of a dataset, the C×C matrix
M[t, p] = number of pixels whose target class is t and predicted class is p (rows: target,
columns: prediction), and ``compute()`` derives from it, in percent:

* ``iou_per_class[c] = 100 · M[c, c] / (sum_p M[c, p] + sum_t M[t, c] − M[c, c])``
  (TP / (TP + FN + FP), the PASCAL VOC / Cityscapes IoU); ``nan`` for a class whose union is
  zero (it appears neither in the target nor in the prediction of any counted pixel);
* ``miou``: the mean of ``iou_per_class`` over the classes with a non-zero union. Classes with
  zero union are *excluded* rather than counted as 0 or 100: a class that never occurs and is
  never predicted says nothing about the model. A class that is only predicted (false positives,
  no target pixel) has union > 0 and IoU 0, so it is included and lowers the mean;
* ``pixel_acc = 100 · trace(M) / sum(M)``.

The metric is dataset-level (the standard Cityscapes/VOC protocol, e.g. mmseg ``IoUMetric``):
IoUs come from the matrix summed over every image, which in general differs from the mean of
per-image mIoUs. Pixels whose target equals ``ignore_index`` (255 by default) or lies outside
[0, C) are not counted; their prediction is irrelevant.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class ConfusionMatrix:
    """Accumulates a (C, C) int64 confusion matrix (rows: target, columns: prediction)."""

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    @property
    def matrix(self) -> Tensor:
        """A CPU copy of the accumulated matrix M[target, prediction]."""
        return self._matrix.detach().cpu().clone()

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add one batch: ``pred`` and ``target`` are integer class maps of the same shape, e.g. (B, H, W).

        Target pixels equal to ``ignore_index`` or outside [0, C) are skipped. A prediction outside
        [0, C) on a counted pixel is an error (predictions are argmax indices, always in range).
        """
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        if pred.is_floating_point() or target.is_floating_point():
            raise TypeError("pred and target must be integer class maps (take the argmax of the logits first)")
        pred = pred.reshape(-1).to(torch.int64)
        target = target.reshape(-1).to(device=pred.device, dtype=torch.int64)
        valid = (target != self.ignore_index) & (target >= 0) & (target < self.num_classes)
        pred, target = pred[valid], target[valid]
        if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= self.num_classes):
            raise ValueError(f"predictions must lie in [0, {self.num_classes}) on counted pixels")
        counts = torch.bincount(target * self.num_classes + pred, minlength=self.num_classes**2)
        if self._matrix.device != counts.device:
            self._matrix = self._matrix.to(counts.device)
        self._matrix += counts.view(self.num_classes, self.num_classes)

    def compute(self) -> dict:
        """``{"miou": float, "iou_per_class": list[float], "pixel_acc": float}``, all in percent.

        ``nan`` where undefined: ``iou_per_class[c]`` for a zero-union class, ``miou`` when no class
        has a non-zero union and ``pixel_acc`` when no pixel was counted.
        """
        m = self._matrix.detach().cpu().to(torch.float64)
        tp = m.diagonal()
        union = m.sum(dim=1) + m.sum(dim=0) - tp
        iou = [100.0 * float(t) / float(u) if u > 0 else math.nan for t, u in zip(tp, union, strict=True)]
        present = [v for v, u in zip(iou, union, strict=True) if u > 0]
        total = float(m.sum())
        return {
            "miou": sum(present) / len(present) if present else math.nan,
            "iou_per_class": iou,
            "pixel_acc": 100.0 * float(tp.sum()) / total if total > 0 else math.nan,
        }
