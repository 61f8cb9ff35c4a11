"""AB: Heo, Lee, Yun, Choi, "Knowledge Transfer via Distillation of Activation Boundaries Formed
by Hidden Neurons", AAAI 2019 (bhheo/AB_distillation), in RepDistiller's form.

An init stage transfers the teacher's activation boundaries: connectors r_i map the student's
stage features onto the teacher's, and the alternative (hinge-squared) loss pushes each connector
output beyond a margin m on the side where the teacher's neuron is active or not:

    l(s, t) = sum (s + m)^2 [s > -m and t <= 0] + (s - m)^2 [s <= m and t > 0]
    L_init  = sum_i w_i * l(r_i(f_s,i), f_t,i) / B * 3 / 1000,    w_i = 2^(i - n + 1), i = 0..n-1

(HobbitLong/RepDistiller ``distiller_zoo/AB.py`` ``ABLoss``, margin 1; the deeper stage weighs
most). The init stage (``Method.init_stage``) trains the connectors and the student, CE off, for
``init_epochs`` epochs at the schedule's base rate held constant (RepDistiller ``helper/pretrain.py``
``init``, ``--init_epochs 30`` of 240; default here: the same eighth of the protocol's epochs,
resolved by the runner). The main run is then plain cross-entropy from that initialisation:
RepDistiller's ``loops.py`` sets ``loss_kd = 0`` for AB, so its ``-b 1`` weighs nothing; the
connectors are not used after the init stage.

Feature points: ``stage1.preact``..``stage<stages>.preact`` of both models, the stage outputs
before their last ReLU (RepDistiller's ``feat[1:-1]`` with ``preact=True``; 3 stages for the tiny
family and the CIFAR ResNets/WRNs). Connectors as RepDistiller's ``Connector``: a ``ConvReg``
without ReLU where the student's map differs from the teacher's in channels or height, the identity
where they agree.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.connectors import ConvReg
from baselines.stage_features import StageMethod
from bench.method import LossInputs
from bench.registry import METHODS


def boundary_loss(source: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """RepDistiller's ``criterion_alternative_l2``: summed over every element (not averaged)."""
    below = (source > -margin) & (target <= 0)
    above = (source <= margin) & (target > 0)
    return ((source + margin).pow(2) * below + (source - margin).pow(2) * above).sum()


def ab_loss(g_s: list[torch.Tensor], g_t: list[torch.Tensor], margin: float = 1.0) -> torch.Tensor:
    """Sum over stages of ``2^(i-n+1) * boundary_loss / B * 3 / 1000`` (``ABLoss``, summed as ``init`` sums it)."""
    n, batch = len(g_s), g_s[0].shape[0]
    return sum(2.0 ** (i - n + 1) * boundary_loss(s, t, margin) / batch / 1000 * 3
               for i, (s, t) in enumerate(zip(g_s, g_t, strict=True)))


@METHODS.register("ab")
class AB(StageMethod):
    """Activation-boundary initialisation, then cross-entropy; see the module docstring."""

    defaults = {"margin": 1.0, "stages": 3, "init_epochs": None}
    ranges = {"margin": "(0, inf)", "stages": "[1, 16]", "init_epochs": "[0, inf)"}
    init_stage = True
    student_suffix = teacher_suffix = ".preact"

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        connectors = []
        for s, t in zip(self.student_features, self.teacher_features, strict=True):
            s_shape, t_shape = student_shapes[s], teacher_shapes[t]
            same = s_shape[1] == t_shape[1] and s_shape[2] == t_shape[2]
            connectors.append(nn.Identity() if same else ConvReg(s_shape, t_shape, use_relu=False))
        return nn.ModuleList(connectors)

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        return dict(inputs.task_losses)

    def init_losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        g_s = [connect(inputs.student[p]) for connect, p in zip(extras, self.student_features, strict=True)]
        g_t = [inputs.teacher[p] for p in self.teacher_features]
        return {"ab": ab_loss(g_s, g_t, self.hparams["margin"])}
