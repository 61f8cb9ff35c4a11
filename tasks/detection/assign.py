"""Anchor assignment shared by detection methods that compare outputs anchor by anchor.

The same rules as torchvision's RetinaNet (checked by the tests against the
model's own ``proposal_matcher`` and ``box_coder``): an anchor is foreground
for the ground-truth box it overlaps most if that IoU is >= 0.5, background
below 0.4, ignored in between, and every box keeps its best anchor
(low-quality matches allowed). Regression targets are the box coder's deltas
(dx, dy, dw, dh) with unit weights.
"""

from __future__ import annotations

import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.ops import box_iou

FG_IOU, BG_IOU = 0.5, 0.4
BOX_CODER = det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
MATCHER = det_utils.Matcher(FG_IOU, BG_IOU, allow_low_quality_matches=True)


def assign(anchors: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For one image: ``(foreground (N,) bool, background (N,) bool, regression targets (N, 4))``.

    Targets are meaningful on foreground anchors only (zeros elsewhere).
    """
    n = anchors.shape[0]
    if boxes.numel() == 0:
        return (torch.zeros(n, dtype=torch.bool, device=anchors.device),
                torch.ones(n, dtype=torch.bool, device=anchors.device), torch.zeros(n, 4, device=anchors.device))
    matched = MATCHER(box_iou(boxes, anchors))
    foreground = matched >= 0
    background = matched == det_utils.Matcher.BELOW_LOW_THRESHOLD
    targets = torch.zeros(n, 4, device=anchors.device)
    if foreground.any():
        targets[foreground] = BOX_CODER.encode_single(boxes[matched[foreground]], anchors[foreground])
    return foreground, background, targets
