"""Hinton KD: Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network", 2015.

    L = (1 - a) * L_task + a * T^2 * KL(p_t^T || p_s^T),   p^T = softmax(z / T)

The KL is summed over classes and averaged over the batch (``batchmean``), not an
element-wise mean; T^2 keeps the soft-target gradients on the scale of the hard
ones. Defaults T=4, a=0.9 as in the CIFAR-100 benchmarks (RepDistiller, mdistiller).
Applies wherever the task's output is a class distribution per sample (per pixel
for segmentation, where the mean runs over pixels too).

The per-location KL (:func:`kl_map`) is shared with the multi-teacher methods.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.method import LossInputs, Method
from bench.registry import METHODS


def kl_map(student_logits: torch.Tensor, target_log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(q || softmax(z_s/T)) at every location (classes on dim 1, summed), not averaged.

    ``target_log_probs`` is log q, the soft target already at temperature T.
    """
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    return temperature**2 * (target_log_probs.exp() * (target_log_probs - log_p_s)).sum(dim=1)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(z_t/T) || softmax(z_s/T)), summed over the class dimension (dim 1), batch-averaged."""
    return kl_map(student_logits, F.log_softmax(teacher_logits / temperature, dim=1), temperature).mean()


@METHODS.register("kd")
class KD(Method):
    """Hinton KD on the output logits; see the module docstring for the formula."""

    defaults = {"T": 4.0, "alpha": 0.9}
    ranges = {"T": "(0, inf)", "alpha": "[0, 1]"}  # a temperature divides logits; alpha mixes two losses
    teacher_features = ("logits",)
    tasks = ("classification", "segmentation")

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        alpha, temperature = self.hparams["alpha"], self.hparams["T"]
        terms = {name: (1 - alpha) * value for name, value in inputs.task_losses.items()}
        terms["kd"] = alpha * soft_kl(inputs.student["logits"], inputs.teacher["logits"], temperature)
        return terms
