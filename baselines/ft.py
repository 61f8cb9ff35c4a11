"""FT (factor transfer): Kim, Park, Kwak, "Paraphrasing Complex Network: Network Compression via
Factor Transfer", NeurIPS 2018, in RepDistiller's form.

Two stages. First a *paraphraser* P (a convolutional auto-encoder on the teacher's last-stage
feature, factor channels = rate * C_t, rate 0.5) is trained to reconstruct that feature:

    L_init = MSE(P.decoder(P.encoder(f_t)), f_t)

training only P (``Method.init_stage``; RepDistiller ``helper/pretrain.py`` ``init`` with
``nn.MSELoss``, 30 of 240 epochs, default here: the same eighth of the protocol's epochs, resolved
by the runner). Then the student learns through a *translator* Q (the paraphraser's encoder shape
from the student's channels, with BN), P frozen:

    L = CE + beta * mean |phi(Q(f_s)) - phi(P.encoder(f_t))|,   phi(F) = l2-normalise(mean_c F^2)

(HobbitLong/RepDistiller ``distiller_zoo/FactorTransfer.py``: p1 = 2, p2 = 1; the larger map is
pooled to the smaller; ``models/util.py`` ``Paraphraser``/``Translator``), beta = 200 (the CRD
table's ``-b 200``). The paraphraser and translator are extras (counted); P gets no gradient in
the main run (its factor is computed without one), as RepDistiller leaves it out of the optimizer.

The init stage's rate is the base rate times 0.2 (``init_lr_factor``): RepDistiller's ``init``
uses lr 0.01 for factor transfer with ResNet and WRN students against their 0.05.

Feature points: ``backbone.out`` of both models (RepDistiller's ``feat[-2]``, the last stage).

Deviations: the paper's FT loss compares the l2-normalised factors themselves (||F_T/|F_T| -
F_S/|F_S|||_1); RepDistiller's, used here, compares their channel-mean-of-squares maps, as the
CRD table ran it. RepDistiller's ``init`` keeps lr 0.05 (not 0.01) for its VGG, MobileNet and
ShuffleNet students; here every student takes the 0.2 factor. The student still runs its forward
pass in the init stage (in eval mode, as RepDistiller's ``init`` has it), though P does not use it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.connectors import Paraphraser, Translator
from bench.method import LossInputs, Method
from bench.registry import METHODS

POINT = "backbone.out"


def factor_map(f: torch.Tensor, p1: float = 2.0) -> torch.Tensor:
    """l2-normalised ``mean_c f^p1``, flattened per sample."""
    return F.normalize(f.pow(p1).mean(1).flatten(1))


def factor_loss(f_s: torch.Tensor, f_t: torch.Tensor, p1: float = 2.0, p2: float = 1.0) -> torch.Tensor:
    """RepDistiller's ``FactorTransfer.factor_loss``: the larger map pooled to the smaller one's size,
    then ``mean |phi_s - phi_t|`` (p2 = 1) or ``mean (phi_s - phi_t)^p2``."""
    s_h, t_h = f_s.shape[2], f_t.shape[2]
    if s_h > t_h:
        f_s = F.adaptive_avg_pool2d(f_s, (t_h, t_h))
    elif s_h < t_h:
        f_t = F.adaptive_avg_pool2d(f_t, (s_h, s_h))
    diff = factor_map(f_s, p1) - factor_map(f_t, p1)
    return diff.abs().mean() if p2 == 1 else diff.pow(p2).mean()


@METHODS.register("ft")
class FactorTransfer(Method):
    """Factor transfer with a pre-trained paraphraser; see the module docstring."""

    defaults = {"beta": 200.0, "rate": 0.5, "init_epochs": None}
    ranges = {"beta": "[0, inf)", "rate": "(0, 1]", "init_epochs": "[0, inf)"}
    student_features = (POINT,)
    teacher_features = (POINT,)
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols
    init_stage = True
    init_lr_factor = 0.2

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        s_shape, t_shape = student_shapes[POINT], teacher_shapes[POINT]
        return nn.ModuleDict({"paraphraser": Paraphraser(t_shape, self.hparams["rate"]),
                              "translator": Translator(s_shape, t_shape, self.hparams["rate"])})

    def init_parameters(self, student, extras) -> list[nn.Parameter]:
        return list(extras["paraphraser"].parameters())

    def init_losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        f_t = inputs.teacher[POINT]
        _, reconstruction = extras["paraphraser"](f_t)
        return {"reconstruction": F.mse_loss(reconstruction, f_t)}

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            factor_t = extras["paraphraser"].encoder(inputs.teacher[POINT])
        factor_s = extras["translator"](inputs.student[POINT])
        terms = dict(inputs.task_losses)
        terms["factor"] = self.hparams["beta"] * factor_loss(factor_s, factor_t)
        return terms
