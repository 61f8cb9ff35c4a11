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

Feature points: ``stage1``..``stage<stages>`` of both models (RepDistiller's ``feat[1:-1]``; 3 for
the tiny family and the CIFAR ResNets/WRNs).

Deviation: the paper and RepDistiller read *pre-activation* features (``preact=True``: the block
output before its last ReLU), which no model here exposes as a module output (in a residual block
it is the sum of BN and shortcut). This uses the post-ReLU stage outputs instead. For the teacher
it changes nothing: the loss reads it only through t > 0, and ReLU(x) > 0 exactly when x > 0. For
the student the connector sees post-ReLU features, so every stage gets a connector (conv + BN, no
ReLU; RepDistiller's ``Connector`` builds one only where shapes differ and passes equal shapes
through unchanged): an identity on non-negative features could never reach the -m side.
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

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        return nn.ModuleList([ConvReg(student_shapes[p], teacher_shapes[p], use_relu=False)
                              for p in self.student_features])

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        return dict(inputs.task_losses)

    def init_losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        g_s = [connect(inputs.student[p]) for connect, p in zip(extras, self.student_features, strict=True)]
        g_t = [inputs.teacher[p] for p in self.teacher_features]
        return {"ab": ab_loss(g_s, g_t, self.hparams["margin"])}
