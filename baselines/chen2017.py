"""Detector distillation of Chen, Choi, Yu, Han, Chandraker, "Learning Efficient Object Detection
Models with Knowledge Distillation", NeurIPS 2017, adapted to a one-stage detector.

Three terms, as published for Faster R-CNN:

- classification: L_cls = mu * L_hard + (1 - mu) * L_soft, with
  L_soft = -sum_c w_c P_t(c) log P_s(c), w_background = 1.5, w_c = 1 otherwise;
- bounded regression: L_reg = L_smoothL1(R_s, y) + nu * L_b, where
  L_b = ||R_s - y||^2 if ||R_s - y||^2 + m > ||R_t - y||^2 else 0: the teacher
  is an upper bound the student must reach, not a target;
- hint: L_hint = ||adapt(V_s) - Z_t||^2 through an adaptation layer;

    L = L_cls + lambda * L_reg + gamma * L_hint,  mu = 0.5, nu = 0.5, lambda = 1, gamma = 0.5, m = 0.

The values of mu, nu, lambda, gamma and m are from a secondary summary of the
paper ([R] in ``shared/reference/methods.md``) and could not be checked here;
w_background = 1.5 matches a public re-implementation.

Adaptation to RetinaNet (whose classifier is a sigmoid per class, background
implicit): L_soft is applied per anchor and class as a binary cross-entropy
against the teacher's sigmoid probability, the background side
(1 - P_t) log(1 - P_s) weighted by w_background; it is summed over classes and
anchors and divided by the number of foreground anchors, like RetinaNet's own
focal loss. L_hard is the student's focal loss; L_smoothL1 the student's own
box loss (L1 in torchvision's RetinaNet); L_b uses foreground anchors (assigned
as RetinaNet does, :mod:`tasks.detection.assign`) and is averaged over them.
The hint is the mean squared error at ``neck.p3`` (stride 8) through a 3x3
conv adapter. Anchors are assigned in the frame the detector sees (images
resized, batch padded: :meth:`tasks.detection.task.DetectionTask.detector_frame`),
the frame of the head's outputs and of the detector's own losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.method import LossInputs, Method
from bench.registry import METHODS
from tasks.detection.assign import assign

HINT_POINT = "neck.p3"


def soft_binary_ce(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   background_weight: float) -> torch.Tensor:
    """-sum [P_t log P_s + w_bg (1 - P_t) log(1 - P_s)] over all entries (sigmoid probabilities)."""
    p_t = torch.sigmoid(teacher_logits)
    return -(p_t * F.logsigmoid(student_logits) + background_weight * (1 - p_t) * F.logsigmoid(-student_logits)).sum()


def bounded_regression(student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor,
                       margin: float) -> torch.Tensor:
    """Per-row ||R_s - y||^2 where it exceeds ||R_t - y||^2 - m, else 0 (rows are foreground anchors)."""
    student_error = ((student - targets) ** 2).sum(dim=1)
    teacher_error = ((teacher - targets) ** 2).sum(dim=1)
    return torch.where(student_error + margin > teacher_error, student_error, torch.zeros_like(student_error))


@METHODS.register("chen2017")
class Chen2017(Method):
    """Weighted soft classification, teacher-bounded regression and an adapted hint; see the module docstring."""

    defaults = {"mu": 0.5, "nu": 0.5, "lambda_reg": 1.0, "gamma": 0.5, "margin": 0.0, "background_weight": 1.5}
    student_features = ("head.out", HINT_POINT)
    teacher_features = ("head.out", HINT_POINT)
    tasks = ("detection",)

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        return nn.Conv2d(student_shapes[HINT_POINT][1], teacher_shapes[HINT_POINT][1], 3, padding=1)

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        h = self.hparams
        student, teacher = inputs.student["head.out"], inputs.teacher["head.out"]
        frame_hw, boxes = inputs.task.detector_frame(inputs.inputs, inputs.targets)
        anchors = inputs.task.anchors_all(frame_hw).to(student["cls_logits"].device)
        if anchors.shape[0] != student["cls_logits"].shape[1]:
            raise ValueError(f"chen2017: {anchors.shape[0]} anchors for a {frame_hw[0]}x{frame_hw[1]} input frame, "
                             f"but the head scored {student['cls_logits'].shape[1]}")
        soft, bound, n_foreground = 0.0, [], 0
        for i, image_boxes in enumerate(boxes):
            foreground, _, regression_targets = assign(anchors, image_boxes.to(anchors.device))
            n_foreground += int(foreground.sum())
            soft = soft + soft_binary_ce(student["cls_logits"][i], teacher["cls_logits"][i], h["background_weight"])
            bound.append(bounded_regression(student["bbox_regression"][i][foreground],
                                            teacher["bbox_regression"][i][foreground],
                                            regression_targets[foreground], h["margin"]))
        bound = torch.cat(bound)
        terms = {
            "classification": h["mu"] * inputs.task_losses["classification"],
            "soft_classification": (1 - h["mu"]) * soft / max(1, n_foreground),
            "bbox_regression": h["lambda_reg"] * inputs.task_losses["bbox_regression"],
            "bounded_regression": h["lambda_reg"] * h["nu"] * (bound.mean() if len(bound) else bound.sum()),
            "hint": h["gamma"] * F.mse_loss(extras(inputs.student[HINT_POINT]), inputs.teacher[HINT_POINT]),
        }
        return terms
