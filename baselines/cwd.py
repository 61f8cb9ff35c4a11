"""Channel-wise distillation (CWD): Shu, Liu, Gao, Yan, Shen, "Channel-wise Knowledge Distillation
for Dense Prediction", ICCV 2021.

For each channel, a spatial softmax phi(x / tau) over the H x W locations, then

    L_cwd = tau^2 / (N C) sum_c KL(phi(y_t_c) || phi(y_s_c)),   L = CE + weight * L_cwd

with tau = 4 and weight 3, the authors' run (``exp_cwd.sh channel kl 3 4``), on
the class scores at stride 8 (``logits.low``), the paper's logits variant
(:func:`tasks.segmentation.losses.channel_wise_kd`).
"""

from __future__ import annotations

import torch

from bench.method import LossInputs, Method
from bench.registry import METHODS
from tasks.segmentation.losses import channel_wise_kd


@METHODS.register("cwd")
class ChannelWiseKD(Method):
    """Channel-wise distillation on logits; see the module docstring."""

    defaults = {"weight": 3.0, "tau": 4.0}
    ranges = {"weight": "[0, inf)", "tau": "(0, inf)"}
    student_features = ("logits.low",)
    teacher_features = ("logits.low",)
    tasks = ("segmentation",)

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        terms = dict(inputs.task_losses)
        terms["cwd"] = self.hparams["weight"] * channel_wise_kd(inputs.student["logits.low"],
                                                               inputs.teacher["logits.low"], self.hparams["tau"])
        return terms
