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
    """The FGFI imitation mask I of shape (B, H, W), values in {0, 1}, for one feature map.

    Wang, Yuan, Zhang, Feng, "Distilling Object Detectors with Fine-grained Feature Imitation",
    CVPR 2019. For every image b and every ground-truth box g:

    * m_g = IoU(g, a) for all H·W·A anchors a (anchors crossing the image border included);
    * F_g = psi · max_a m_g(a);
    * location (i, j) is positive for g if any of its A anchors has m_g > F_g (strictly);
    * I_b(i, j) = 1 if sum_g [(i, j) positive for g] > 0 else 0.

    Args:
        gt_boxes: one (K_b, 4) tensor per image, xyxy in the detector's input frame (K_b may be 0:
            all-zero mask).
        anchors: (H·W·A, 4) xyxy pixels for one feature level in torchvision ``AnchorGenerator`` order:
            location-major, row by row (for each y, for each x), the A cell anchors of a location adjacent.
        feature_hw: (H, W) of the feature level.
        num_anchors: A, anchors per location.
        psi: threshold factor, 0 <= psi < 1 (0.5 in the paper; 1 would leave nothing since the test is strict).
    """
    return imitation_masks(gt_boxes, [anchors], [feature_hw], [num_anchors], psi)[0]


def imitation_masks(gt_boxes: Sequence[Tensor], anchors: Sequence[Tensor], feature_hws: Sequence[tuple[int, int]],
                    num_anchors: Sequence[int], psi: float = 0.5) -> list[Tensor]:
    """FGFI imitation masks of several feature levels with one threshold per object across them.

    As :func:`imitation_mask`, except that F_g = psi · max IoU of g over the anchors of *every*
    given level: a location of level l is positive for g if one of its anchors has IoU > F_g.
    An object that fits no anchor of a level (a small object on a coarse level) then marks few
    or no cells there, which is what the paper's "locations near objects" means on a pyramid.
    With one level this is :func:`imitation_mask`. Returns one (B, H_l, W_l) mask per level.
    """
    if not 0.0 <= psi < 1.0:
        raise ValueError(f"psi must lie in [0, 1), got {psi}")
    if not len(anchors) == len(feature_hws) == len(num_anchors) or not anchors:
        raise ValueError(f"{len(anchors)} anchor sets, {len(feature_hws)} feature sizes and {len(num_anchors)} "
                         "anchor counts: give one of each per level (at least one level)")
    sizes = [tuple(int(v) for v in hw) for hw in feature_hws]
    for level_anchors, (height, width), count in zip(anchors, sizes, num_anchors, strict=True):
        if level_anchors.dim() != 2 or level_anchors.shape[1] != 4 or level_anchors.shape[0] != height * width * count:
            raise ValueError(f"anchors {tuple(level_anchors.shape)} do not match H*W*A = {height}*{width}*{count} "
                             "boxes")
    device = anchors[0].device
    dtype = anchors[0].dtype if anchors[0].is_floating_point() else torch.float32
    anchors = [a.to(device=device, dtype=dtype) for a in anchors]
    masks = [torch.zeros(len(gt_boxes), h, w, dtype=dtype, device=device) for h, w in sizes]
    for b, boxes in enumerate(gt_boxes):
        boxes = torch.as_tensor(boxes).to(device=device, dtype=dtype).reshape(-1, 4)
        if boxes.shape[0] == 0:
            continue
        ious = [box_iou(boxes, level_anchors) for level_anchors in anchors]  # (K, H_l*W_l*A_l) each
        threshold = psi * torch.stack([iou.max(dim=1).values for iou in ious]).max(dim=0).values[:, None]
        for mask, iou, (height, width), count in zip(masks, ious, sizes, num_anchors, strict=True):
            positive = (iou > threshold).view(-1, height, width, count).any(dim=3)  # (K, H, W)
            mask[b] = (positive.sum(dim=0) > 0).to(dtype)
    return masks


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
