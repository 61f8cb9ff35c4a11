"""Structured KD, pixel-wise part: Liu, Chen, Liu, Qin, Luo, Wang, "Structured Knowledge
Distillation for Semantic Segmentation", CVPR 2019 (TPAMI 2020).

    l_pi = 1/(W H) sum_i KL(q_t_i || q_s_i),   q_i = softmax of pixel i's class scores (T = 1)
    L = CE + lambda_pi * l_pi,   lambda_pi = 10

on the stride-8 class scores (``logits.low``), as in the authors' code
(``CriterionPixelWise``, which uses the cross-entropy: the same gradient, since
they differ by the teacher's entropy; :func:`tasks.segmentation.losses.pixelwise_kd`).
The first row of the paper's ablation (+pi); ``skd-pi-pa`` and ``skd-pi-pa-ho``
add the other two parts.
"""

from __future__ import annotations

import torch

from bench.method import LossInputs, Method
from bench.registry import METHODS
from tasks.segmentation.losses import pixelwise_kd


@METHODS.register("skd-pi")
class SKDPixel(Method):
    """SKD pixel-wise distillation; see the module docstring."""

    defaults = {"lambda_pi": 10.0}
    student_features = ("logits.low",)
    teacher_features = ("logits.low",)
    tasks = ("segmentation",)

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        terms = dict(inputs.task_losses)
        terms["pixel"] = self.hparams["lambda_pi"] * pixelwise_kd(inputs.student["logits.low"],
                                                                 inputs.teacher["logits.low"])
        return terms
