"""DIST: Huang, You, Wang, Qian, Xu, "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022.

The student matches the teacher's *relations* rather than its probabilities: with
Y = softmax(Z / tau) (B x C) for both models and rho the Pearson correlation,

    inter = 1 - mean_b rho(Y_s[b, :], Y_t[b, :])      (each sample's class distribution)
    intra = 1 - mean_c rho(Y_s[:, c], Y_t[:, c])      (each class's scores across the batch)
    L = CE + w * tau^2 * (beta * inter + gamma * intra)

Defaults beta = gamma = 1, tau = 4, w = 2, CE weight 1: the authors' CIFAR-100 recipe
(hunto/image_classification_sota ``configs/strategies/distill/dist_cifar.yaml``: ``kd: dist_t4``,
``kd_loss_weight: 2.``, ``ori_loss_weight: 1.``; ``lib/models/losses/kd_loss.py`` builds
``DIST(beta=1, gamma=1, tau=4)``). The paper's ImageNet setting is tau = 1, w = 1. Feature points:
the logits only.

Reference: ``lib/models/losses/dist_kd.py`` of that repository (the DIST_KD repository's
``classification`` submodule): rho is the cosine similarity of the mean-centred rows with eps = 1e-8
added to the product of the norms. mdistiller has no DIST. No deviation.
"""

from __future__ import annotations

import torch

from bench.method import LossInputs, Method
from bench.registry import METHODS


def pearson_rows(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (the reference's eps)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(inter, intra) relation losses, each tau^2-scaled, of ``DIST.forward``."""
    y_s = (student_logits / tau).softmax(dim=1)
    y_t = (teacher_logits / tau).softmax(dim=1)
    inter = 1 - pearson_rows(y_s, y_t).mean()
    intra = 1 - pearson_rows(y_s.t(), y_t.t()).mean()
    return tau**2 * inter, tau**2 * intra


@METHODS.register("dist")
class DIST(Method):
    """Inter- and intra-class relation distillation on the logits; see the module docstring."""

    defaults = {"beta": 1.0, "gamma": 1.0, "tau": 4.0, "weight": 2.0}
    ranges = {"beta": "[0, inf)", "gamma": "[0, inf)", "tau": "(0, inf)", "weight": "[0, inf)"}
    teacher_features = ("logits",)
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        inter, intra = dist_terms(inputs.student["logits"], inputs.teacher["logits"], self.hparams["tau"])
        terms = dict(inputs.task_losses)
        terms["dist"] = self.hparams["weight"] * (self.hparams["beta"] * inter + self.hparams["gamma"] * intra)
        return terms
