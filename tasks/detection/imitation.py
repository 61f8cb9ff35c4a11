"""Fine-grained feature imitation (FGFI): the anchor-based imitation mask and the masked hint loss.

Wang, Yuan, Zhang, Feng, "Distilling Object Detectors with Fine-grained Feature Imitation",
CVPR 2019 (reference code: twangnh/Distilling-Object-Detectors, ``anchor_target_layer.py`` and
``trainval_net_sup.py``). Shared by the ``fgfi`` method (mask from the ground truth) and the
``hint-full`` ablation (an all-ones mask: plain full-map hint learning with the same scaling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import box_iou


def imitation_mask(gt_boxes: Sequence[Tensor], anchors: Tensor, feature_hw: tuple[int, int], num_anchors: int,
                   psi: float = 0.5) -> Tensor:
    """The FGFI imitation mask I of shape (B, H, W), values in {0, 1}.

    Wang, Yuan, Zhang, Feng, "Distilling Object Detectors with Fine-grained Feature Imitation",
    CVPR 2019. For every image b and every ground-truth box g:

    * m_g = IoU(g, a) for all H·W·A anchors a (anchors crossing the image border included);
    * F_g = psi · max_a m_g(a);
    * location (i, j) is positive for g if any of its A anchors has m_g > F_g (strictly);
    * I_b(i, j) = 1 if sum_g [(i, j) positive for g] > 0 else 0.

    Args:
        gt_boxes: one (K_b, 4) tensor per image, xyxy in input-image pixels (K_b may be 0: all-zero mask).
        anchors: (H·W·A, 4) xyxy pixels for one feature level in torchvision ``AnchorGenerator`` order:
            location-major, row by row (for each y, for each x), the A cell anchors of a location adjacent.
        feature_hw: (H, W) of the feature level.
        num_anchors: A, anchors per location.
        psi: threshold factor, 0 <= psi < 1 (0.5 in the paper; 1 would leave nothing since the test is strict).
    """
    height, width = (int(v) for v in feature_hw)
    if not 0.0 <= psi < 1.0:
        raise ValueError(f"psi must lie in [0, 1), got {psi}")
    if anchors.dim() != 2 or anchors.shape[1] != 4 or anchors.shape[0] != height * width * num_anchors:
        raise ValueError(f"anchors {tuple(anchors.shape)} do not match H*W*A = {height}*{width}*{num_anchors} boxes")
    dtype = anchors.dtype if anchors.is_floating_point() else torch.float32
    anchors = anchors.to(dtype)
    mask = torch.zeros(len(gt_boxes), height, width, dtype=dtype, device=anchors.device)
    for b, boxes in enumerate(gt_boxes):
        boxes = torch.as_tensor(boxes).to(device=anchors.device, dtype=dtype).reshape(-1, 4)
        if boxes.shape[0] == 0:
            continue
        iou = box_iou(boxes, anchors)  # (K, H*W*A)
        threshold = psi * iou.max(dim=1, keepdim=True).values
        positive = (iou > threshold).view(-1, height, width, num_anchors).any(dim=3)  # (K, H, W)
        mask[b] = (positive.sum(dim=0) > 0).to(dtype)
    return mask


def imitation_loss(student_adapted: Tensor, teacher: Tensor, mask: Tensor) -> Tensor:
    """L_imit = sum_{b,i,j,c} I_bij · (s_bijc − t_bijc)² / (2 · N_p), with N_p = sum_{b,i,j} I_bij.

    N_p counts mask positions, not channels (FGFI ``trainval_net_sup.py``). The teacher is a
    fixed target (detached) and the mask carries no gradient. With N_p = 0 the result is a
    zero that stays in the student's graph. An all-ones mask gives the ``hint-full`` ablation,
    N_p = B·H·W.

    Args:
        student_adapted: (B, C, H, W) student feature after the adaptation layer.
        teacher: (B, C, H, W) teacher feature, same stride and size.
        mask: (B, H, W) imitation mask.
    """
    if student_adapted.shape != teacher.shape:
        raise ValueError(f"student {tuple(student_adapted.shape)} and teacher {tuple(teacher.shape)} differ")
    if student_adapted.dim() != 4 or mask.shape != (student_adapted.shape[0], *student_adapted.shape[2:]):
        raise ValueError(f"mask {tuple(mask.shape)} does not match features {tuple(student_adapted.shape)}")
    mask = mask.detach().to(student_adapted.dtype)
    squared = (student_adapted - teacher.detach()).pow(2)
    total = (squared * mask.unsqueeze(1)).sum()
    n_positive = mask.sum()
    return total / (2 * torch.where(n_positive > 0, n_positive, torch.ones_like(n_positive)))
