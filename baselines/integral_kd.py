"""Integral knowledge distillation for pose: Xu, Zou, Lin, Huang, Tian, "Integral Knowledge
Distillation for Multi-Person Pose Estimation", IEEE Signal Processing Letters 27:436, 2020.

Three parts, as the abstract names them:

- logit (heatmap) distillation: MSE(H_s, H_t) with the keypoint target weights;
- feature distillation: adapted MSE between the deconvolution head's features
  (``head.out``, a 1x1 conv adapter);
- structure distillation: the global structure of the prediction, here the
  K x K cosine-similarity matrix between the flattened keypoint heatmaps,
  matched by MSE;

    L = L_task + w_logit * L_logit + w_feature * L_feature + w_structure * L_structure

Not confirmed (the paper's text was not available here): the weights (all 1.0
here), the exact form of the structure term and where the features are taken.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.method import LossInputs, Method
from bench.registry import METHODS
from tasks.pose.heatmaps import heatmap_mse


def keypoint_structure(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, K, K) cosine similarities between the flattened heatmaps of each pair of keypoints."""
    flat = F.normalize(heatmaps.flatten(2), dim=2)
    return flat @ flat.transpose(1, 2)


@METHODS.register("integral-kd")
class IntegralKD(Method):
    """Heatmap, feature and structure distillation; see the module docstring."""

    defaults = {"w_logit": 1.0, "w_feature": 1.0, "w_structure": 1.0}
    student_features = ("logits", "head.out")
    teacher_features = ("logits", "head.out")
    tasks = ("pose",)

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        return nn.Conv2d(student_shapes["head.out"][1], teacher_shapes["head.out"][1], 1)

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        h, s, t = self.hparams, inputs.student, inputs.teacher
        terms = dict(inputs.task_losses)
        terms["logit"] = h["w_logit"] * heatmap_mse(s["logits"], t["logits"], inputs.targets["weights"])
        terms["feature"] = h["w_feature"] * F.mse_loss(extras(s["head.out"]), t["head.out"])
        terms["structure"] = h["w_structure"] * F.mse_loss(keypoint_structure(s["logits"]),
                                                           keypoint_structure(t["logits"]))
        return terms
