"""DKD, decoupled knowledge distillation: Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge
Distillation", CVPR 2022.

The KD loss split into a target-class and a non-target-class part, re-weighted:

    b^T = [p_gt, 1 - p_gt]                     (binary: the target class vs all others), p = softmax(z / T)
    TCKD = T^2 * KL(b^T_t || b^T_s)
    NCKD = T^2 * KL(p^T_t(others) || p^T_s(others)),   the softmax over the non-target classes only
    L = CE + min(epoch / W, 1) * (alpha * TCKD + beta * NCKD)

both KLs summed over their classes and averaged over the batch. Defaults alpha = 1, beta = 8,
T = 4, CE weight 1, W = 20 epochs of 240 (mdistiller ``CFG.DKD``: CE_WEIGHT 1, ALPHA 1, BETA 8, T 4,
WARMUP 20; the paper's CIFAR-100 setting; beta is 2 for res56->20 and res110->32 and 6 for the WRN
and VGG pairs in mdistiller's per-pair configs). The warm-up is scaled to the protocol's length
(:mod:`baselines.warmup`). Feature points: the logits only.

Reference: mdistiller ``mdistiller/distillers/DKD.py`` (``dkd_loss``): the binary probabilities
come from the temperature softmax, TCKD takes their plain ``log`` (as the reference; no clamp), and
the non-target softmax is taken over ``z / T - 1000 * gt_mask`` as there (the target class gets
probability ~0 on both sides, so it adds nothing to the KL). No deviation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.warmup import EpochWarmup
from bench.method import LossInputs
from bench.registry import METHODS


def dkd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
              temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD) of mdistiller's ``dkd_loss``, each T^2-scaled, summed over classes, batch-averaged."""
    gt = F.one_hot(targets.reshape(-1), student_logits.shape[1]).to(torch.bool)
    p_s = F.softmax(student_logits / temperature, dim=1)
    p_t = F.softmax(teacher_logits / temperature, dim=1)

    def binary(p: torch.Tensor) -> torch.Tensor:
        return torch.stack([(p * gt).sum(1), (p * ~gt).sum(1)], dim=1)

    batch, scale = targets.numel(), temperature**2
    tckd = F.kl_div(binary(p_s).log(), binary(p_t), reduction="sum") * scale / batch
    masked = 1000.0 * gt.to(student_logits.dtype)
    nckd = F.kl_div(F.log_softmax(student_logits / temperature - masked, dim=1),
                    F.softmax(teacher_logits / temperature - masked, dim=1), reduction="sum") * scale / batch
    return tckd, nckd


@METHODS.register("dkd")
class DKD(EpochWarmup):
    """Decoupled KD on the logits; see the module docstring for the formula."""

    defaults = {"alpha": 1.0, "beta": 8.0, "T": 4.0, "warmup_epochs": None}
    ranges = {"alpha": "[0, inf)", "beta": "[0, inf)", "T": "(0, inf)", "warmup_epochs": "[0, inf)"}
    teacher_features = ("logits",)
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        tckd, nckd = dkd_terms(inputs.student["logits"], inputs.teacher["logits"], inputs.targets,
                               self.hparams["T"])
        terms = dict(inputs.task_losses)
        terms["dkd"] = self.warmup_factor() * (self.hparams["alpha"] * tckd + self.hparams["beta"] * nckd)
        return terms
