"""The student trained alone on the protocol's schedule: the reference every method is compared to."""

from __future__ import annotations

import torch

from bench.method import LossInputs, Method
from bench.registry import METHODS


@METHODS.register("baseline")
class Baseline(Method):
    """No distillation: the task's own loss (cross-entropy for classification)."""

    defaults = {}
    teacher_features = ()

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        return dict(inputs.task_losses)
