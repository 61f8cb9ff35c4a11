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
summed; the paper imitates one feature map (Faster R-CNN's RPN input).
Deviations, stated: the adapter has no ReLU by default, because FPN outputs
(unlike the paper's conv5 feature) take negative values a ReLU could never
match; adapters use PyTorch's default init rather than N(0, 1e-4); there is no
400-iteration imitation warm-up (the mini schedules are far shorter).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.method import LossInputs, Method
from bench.registry import METHODS
from tasks.detection.imitation import imitation_loss, imitation_mask

LEVELS = ("neck.p2", "neck.p3", "neck.p4")


@METHODS.register("fgfi")
class FGFI(Method):
    """Fine-grained feature imitation on the anchor-derived mask; see the module docstring."""

    defaults = {"weight": 0.01, "psi": 0.5, "adapter_relu": False}
    student_features = LEVELS
    teacher_features = LEVELS
    tasks = ("detection",)

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        adapters = {}
        for level in LEVELS:
            layers = [nn.Conv2d(student_shapes[level][1], teacher_shapes[level][1], 3, padding=1)]
            if self.hparams["adapter_relu"]:
                layers.append(nn.ReLU())
            adapters[level.replace(".", "_")] = nn.Sequential(*layers)
        return nn.ModuleDict(adapters)

    def mask(self, inputs: LossInputs, level: str, feature: torch.Tensor) -> torch.Tensor:
        """The imitation mask (B, H, W) at ``level``."""
        image_hw = tuple(inputs.inputs[0].shape[-2:])
        feature_hw = tuple(feature.shape[-2:])
        anchors = inputs.task.anchors_at(level, feature_hw, image_hw).to(feature.device)
        num_anchors = anchors.shape[0] // (feature_hw[0] * feature_hw[1])
        boxes = [t["boxes"] for t in inputs.targets]
        return imitation_mask(boxes, anchors, feature_hw, num_anchors, psi=self.hparams["psi"])

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        terms = dict(inputs.task_losses)
        total = 0.0
        for level in LEVELS:
            student, teacher = inputs.student[level], inputs.teacher[level]
            adapted = extras[level.replace(".", "_")](student)
            total = total + imitation_loss(adapted, teacher, self.mask(inputs, level, student))
        terms["imitation"] = self.hparams["weight"] * total
        return terms
