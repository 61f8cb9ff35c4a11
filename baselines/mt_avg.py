"""Multi-teacher KD, average of losses ("AVER" in Zhang, Chen, Wang, ICASSP 2022; the common
multi-teacher baseline).

    L = (1 - a) * L_task + a * (1/K) * sum_k T^2 * KL(p_k^T || p_s^T)

one Hinton KD term per teacher (:func:`baselines.kd.soft_kl`), averaged over the
K teachers of the protocol's ensemble. Defaults T=4, a=0.9 as for single-teacher
``kd``, so the two differ only in the teachers. Per pixel for segmentation.
"""

from __future__ import annotations

import torch

from baselines.kd import soft_kl
from bench.method import LossInputs, Method
from bench.registry import METHODS


@METHODS.register("mt-avg")
class MultiTeacherAverage(Method):
    """Mean of per-teacher KD terms; see the module docstring."""

    defaults = {"T": 4.0, "alpha": 0.9}
    ranges = {"T": "(0, inf)", "alpha": "[0, 1]"}
    teacher_features = ("logits",)
    tasks = ("classification", "segmentation")
    multi_teacher = True

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        alpha, temperature = self.hparams["alpha"], self.hparams["T"]
        terms = {name: (1 - alpha) * value for name, value in inputs.task_losses.items()}
        per_teacher = [soft_kl(inputs.student["logits"], t["logits"], temperature) for t in inputs.teachers]
        terms["kd"] = alpha * torch.stack(per_teacher).mean()
        return terms
