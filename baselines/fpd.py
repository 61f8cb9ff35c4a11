"""Fast Pose Distillation (FPD): Zhang, Zhu, Ye, "Fast Human Pose Estimation", CVPR 2019.

    L = (1 - a) * MSE(H_s, H_gt) + a * MSE(H_s, H_t),   a = 0.5

where MSE is the joints MSE with the keypoint target weights
(:func:`tasks.pose.heatmaps.heatmap_mse`) and H_t the teacher's heatmaps.
"""

from __future__ import annotations

import torch

from bench.method import LossInputs, Method
from bench.registry import METHODS
from tasks.pose.heatmaps import heatmap_mse


@METHODS.register("fpd")
class FPD(Method):
    """Heatmap distillation mixed with the ground-truth heatmap loss; see the module docstring."""

    defaults = {"alpha": 0.5}
    ranges = {"alpha": "[0, 1]"}
    teacher_features = ("logits",)
    tasks = ("pose",)

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        alpha = self.hparams["alpha"]
        terms = {name: (1 - alpha) * value for name, value in inputs.task_losses.items()}
        terms["fpd"] = alpha * heatmap_mse(inputs.student["logits"], inputs.teacher["logits"],
                                           inputs.targets["weights"])
        return terms
