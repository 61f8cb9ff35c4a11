"""Structured KD, pixel-wise plus pair-wise parts (Liu et al., CVPR 2019).

    l_pa = 1/N^2 sum_ij (a_t_ij - a_s_ij)^2,   a_ij = cosine of nodes i, j
    L = CE + 80 * l_pi + lambda_pa * l_pa,   lambda_pa = 1.0 (the code's default; its run script uses 0.5)

Nodes: the PSP feature (``psp.out``) max-pooled with a window of half the map
(``pool_scale`` 0.5, a 2x2 node grid), each node L2-normalised over channels
(:func:`tasks.segmentation.losses.pairwise_kd`).
"""

from __future__ import annotations

import torch

from baselines.skd_pi import SKDPixel
from bench.method import LossInputs
from bench.registry import METHODS
from tasks.segmentation.losses import pairwise_kd


@METHODS.register("skd-pi-pa")
class SKDPixelPair(SKDPixel):
    """SKD pixel-wise and pair-wise distillation; see the module docstring."""

    defaults = {**SKDPixel.defaults, "lambda_pa": 1.0, "pool_scale": 0.5}
    student_features = ("logits.low", "psp.out")
    teacher_features = ("logits.low", "psp.out")

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        terms = super().losses(inputs, extras)
        terms["pair"] = self.hparams["lambda_pa"] * pairwise_kd(inputs.student["psp.out"], inputs.teacher["psp.out"],
                                                                self.hparams["pool_scale"])
        return terms
