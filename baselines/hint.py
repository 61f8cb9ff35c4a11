"""Hint (feature imitation) on the backbone output, FitNets-style: Romero et al., ICLR 2015, in the
single-stage benchmark form (RepDistiller / mdistiller):

    L = L_task + weight * MSE(adapt(f_s), f_t)

with a 1x1 conv adapter from the student's ``backbone.out`` channels to the
teacher's (both at stride 16). weight = 1.0 is our choice for heatmap tasks
(the classification benchmarks use 100 on their own feature scale).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.method import LossInputs, Method
from bench.registry import METHODS


@METHODS.register("hint")
class Hint(Method):
    """Adapted MSE between backbone outputs; see the module docstring."""

    defaults = {"weight": 1.0}
    student_features = ("logits", "backbone.out")
    teacher_features = ("backbone.out",)
    tasks = ("pose",)

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        return nn.Conv2d(student_shapes["backbone.out"][1], teacher_shapes["backbone.out"][1], 1)

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        terms = dict(inputs.task_losses)
        adapted = extras(inputs.student["backbone.out"])
        terms["hint"] = self.hparams["weight"] * F.mse_loss(adapted, inputs.teacher["backbone.out"])
        return terms
