"""Structured KD, pixel-wise part: Liu, Chen, Liu, Qin, Luo, Wang, "Structured Knowledge
Distillation for Semantic Segmentation", CVPR 2019 (TPAMI 2020).

    l_pi = 1/B sum_b 1/(W H) sum_i KL(q_t_bi || q_s_bi),   q_i = softmax of pixel i's class scores (T = 1)
    L = CE + lambda_pi * l_pi,   lambda_pi = 80 = 10 x 8

on the stride-8 class scores (``logits.low``), as in the authors' code
(``CriterionPixelWise``, which uses the cross-entropy: the same gradient, since
they differ by the teacher's entropy; :func:`tasks.segmentation.losses.pixelwise_kd`).

The weight: the paper's lambda_pi is 10, but the authors' code applies it to a
term *summed* over the images of the batch (``CriterionPixelWise`` divides the
sum over N x W x H pixels by W x H only; ``run_train_val.sh``: one GPU, batch
8), while its CE term is a mean over images and pixels. Relative to the CE
term, their pixel term therefore weighs 10 x 8 = 80 per batch-averaged unit.
Here l_pi is the batch mean (so the weight does not change with the batch
size) and lambda_pi = 80 reproduces the authors' weight relative to CE: on the
same batch of 8 score maps, 80 x l_pi has exactly the gradient of their
10 x sum. (Until protocol v1 of segmentation this was lambda_pi = 10 on the
mean: 8 times weaker than the authors'.)
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

    defaults = {"lambda_pi": 80.0}
    student_features = ("logits.low",)
    teacher_features = ("logits.low",)
    tasks = ("segmentation",)

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        terms = dict(inputs.task_losses)
        terms["pixel"] = self.hparams["lambda_pi"] * pixelwise_kd(inputs.student["logits.low"],
                                                                 inputs.teacher["logits.low"])
        return terms
