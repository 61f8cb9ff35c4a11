"""Fine-grained feature imitation (FGFI): Wang, Yuan, Zhang, Feng, "Distilling Object Detectors
with Fine-grained Feature Imitation", CVPR 2019.

The student imitates the teacher's feature map only near objects. For each
ground-truth box, the IoU of every anchor at every location is computed; a
location is in the imitation mask I if any of its anchors has IoU above
psi x (that box's maximum IoU), psi = 0.5; masks are united over boxes
(:func:`tasks.detection.imitation.imitation_mask`). An adaptation layer f_adap
(3x3 conv) maps the student's feature to the teacher's channels, and

    L_imit = sum_{i,j,c} I_ij (f_adap(s)_ijc - t_ijc)^2 / (2 N_p),   N_p = sum_ij I_ij
    L = L_det + lambda * L_imit,   lambda = 0.01 (the authors' ``--ilw`` for VGG11 Faster R-CNN).

Applied here to every FPN level of a RetinaNet (strides 4, 8, 16), each with
its own adapter, its own anchors and its own mask, and the per-level losses
summed; the paper imitates one feature map (Faster R-CNN's RPN input). On a
pyramid, each object's threshold is psi x its maximum IoU over the anchors of
*all* levels (:func:`tasks.detection.imitation.imitation_masks`): an object
that fits no anchor of a level marks few or no cells there, closest to the
paper's "locations near objects". Taking the maximum per level instead (every
object marks cells on every level) is the ``fgfi-per-level`` ablation
(:mod:`baselines.fgfi_per_level`). Boxes and anchors are taken in the frame the
detector sees (images resized and the batch padded:
:meth:`tasks.detection.task.DetectionTask.detector_frame`), as the reference
code takes them in Faster R-CNN's rescaled input.
Deviations, stated: the adapter has no ReLU by default, because FPN outputs
(unlike the paper's conv5 feature) take negative values a ReLU could never
match; adapters use PyTorch's default init rather than N(0, 1e-4); there is no
400-iteration imitation warm-up (the mini schedules are far shorter).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from bench.method import LossInputs, Method
from bench.registry import METHODS
from tasks.detection.imitation import imitation_loss, imitation_mask, imitation_masks

LEVELS = ("neck.p2", "neck.p3", "neck.p4")


@METHODS.register("fgfi")
class FGFI(Method):
    """Fine-grained feature imitation on the anchor-derived mask; see the module docstring."""

    defaults = {"weight": 0.01, "psi": 0.5, "adapter_relu": False}
    student_features = LEVELS
    teacher_features = LEVELS
    tasks = ("detection",)
    #: False: one threshold per object across all levels (the default); True: one per level (the ablation)
    per_level_threshold: ClassVar[bool] = False

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        adapters = {}
        for level in LEVELS:
            layers = [nn.Conv2d(student_shapes[level][1], teacher_shapes[level][1], 3, padding=1)]
            if self.hparams["adapter_relu"]:
                layers.append(nn.ReLU())
            adapters[level.replace(".", "_")] = nn.Sequential(*layers)
        return nn.ModuleDict(adapters)

    def masks(self, inputs: LossInputs, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The imitation mask (B, H, W) of every level, from the boxes and anchors in the detector's frame."""
        frame_hw, boxes = inputs.task.detector_frame(inputs.inputs, inputs.targets)
        sizes = [tuple(features[level].shape[-2:]) for level in LEVELS]
        anchors = [inputs.task.anchors_at(level, hw, frame_hw).to(features[level].device)
                   for level, hw in zip(LEVELS, sizes, strict=True)]
        counts = [a.shape[0] // (hw[0] * hw[1]) for a, hw in zip(anchors, sizes, strict=True)]
        psi = self.hparams["psi"]
        if self.per_level_threshold:
            masks = [imitation_mask(boxes, a, hw, n, psi) for a, hw, n in zip(anchors, sizes, counts, strict=True)]
        else:
            masks = imitation_masks(boxes, anchors, sizes, counts, psi)
        return dict(zip(LEVELS, masks, strict=True))

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        terms = dict(inputs.task_losses)
        total = 0.0
        masks = self.masks(inputs, inputs.student)
        for level in LEVELS:
            adapted = extras[level.replace(".", "_")](inputs.student[level])
            total = total + imitation_loss(adapted, inputs.teacher[level], masks[level])
        terms["imitation"] = self.hparams["weight"] * total
        return terms
