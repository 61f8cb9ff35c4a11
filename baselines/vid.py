"""VID, variational information distillation: Ahn, Hu, Damianou, Lawrence, Dai, "Variational
Information Distillation for Knowledge Transfer", CVPR 2019.

Maximises a variational lower bound on the mutual information between a teacher feature
t and the student feature s, with a Gaussian q(t | s) whose mean is a regressor mu(s) and
whose variance is one learned value per teacher channel:

    L_vid = sum_stages mean_{b,c,h,w} 1/2 * ( (t - mu(s))^2 / sigma_c^2 + log sigma_c^2 )
    sigma_c^2 = softplus(alpha_c) + eps,     L = CE + beta * L_vid

mu is three 1x1 convolutions without bias (student channels -> teacher channels ->
teacher channels -> teacher channels) with ReLUs between them; alpha_c starts at
softplus^-1(init_pred_var - eps). The larger of the two maps is average-pooled to the
smaller's size first. Defaults: beta = 1 (CRD table, RepDistiller
``scripts/run_cifar_distill.sh``: ``--distill vid -r 1 -a 0 -b 1``; mdistiller ``CFG.VID``),
init_pred_var = 5, eps = 1e-5 (RepDistiller ``VIDLoss``), CE weight 1, no KD term. Feature
points: every stage output, ``stage1``..``stage<stages>`` (RepDistiller ``feat_s[1:-1]``), one
regressor and variance per stage; they are the method's extras (RepDistiller trains them with
the student). Reference: RepDistiller ``distiller_zoo/VID.py`` (code from the author,
ssahn0215/variational-information-distillation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.stage_features import StageMethod, match_spatial, with_term
from bench.method import LossInputs
from bench.registry import METHODS


class VariationalRegressor(nn.Module):
    """mu(s) and the per-channel variance of one stage's q(t | s)."""

    def __init__(self, student_channels: int, teacher_channels: int, init_pred_var: float, eps: float):
        super().__init__()
        mid = teacher_channels
        self.regressor = nn.Sequential(
            nn.Conv2d(student_channels, mid, 1, bias=False), nn.ReLU(),
            nn.Conv2d(mid, mid, 1, bias=False), nn.ReLU(),
            nn.Conv2d(mid, teacher_channels, 1, bias=False),
        )
        self.log_scale = nn.Parameter(torch.full((teacher_channels,), math.log(math.expm1(init_pred_var - eps))))
        self.eps = eps

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        """The mean Gaussian negative log-likelihood (without log 2 pi) of ``f_t`` under q(. | f_s)."""
        f_s, f_t = match_spatial(f_s, f_t)
        mean = self.regressor(f_s)
        var = (F.softplus(self.log_scale) + self.eps).view(1, -1, 1, 1)
        return (0.5 * ((mean - f_t).pow(2) / var + var.log())).mean()


@METHODS.register("vid")
class VariationalInformationDistillation(StageMethod):
    """VID on every stage output; see the module docstring."""

    defaults = {"beta": 1.0, "init_pred_var": 5.0, "eps": 1e-5, "stages": 3}
    ranges = {"beta": "[0, inf)", "init_pred_var": "(0, inf)", "eps": "(0, inf)", "stages": "[1, 16]"}

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        return nn.ModuleList(
            VariationalRegressor(student_shapes[p][1], teacher_shapes[p][1], self.hparams["init_pred_var"],
                                 self.hparams["eps"])
            for p in self.student_features
        )

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        loss = sum(vid(f_s, f_t) for vid, (f_s, f_t) in zip(extras, self.stage_pairs(inputs), strict=True))
        return with_term(inputs, "vid", self.hparams["beta"] * loss)
