"""FitNets: Romero, Ballas, Kahou, Chassang, Gatta, Bengio, "FitNets: Hints for Thin Deep Nets",
ICLR 2015, for classification.

A regressor r maps the student's guided layer onto the teacher's hint layer:

    L = CE + beta * MSE(r(f_s), f_t)

with r RepDistiller's ``ConvReg`` (conv, BN, ReLU sized to the teacher's map;
:class:`baselines.connectors.ConvReg`), the MSE averaged over every element, at ``hint_layer`` 2
(``stage2``, RepDistiller's ``feat[2]``; 0 is the stem) and beta = 100 (the CRD table's ``-r 1 -a 0
-b 100``; HobbitLong/RepDistiller ``train_student.py``, ``distiller_zoo/FitNet.py``).

Two stages. The paper first trains the student up to its guided layer, with the regressor, on the
hint loss alone (stage 1), then the whole student by KD (stage 2, lambda annealed 4 -> 1, tau 3).
RepDistiller, whose numbers form the standard CIFAR-100 table (FitNet 73.50 for resnet32x4 ->
resnet8x4), runs the single-stage form above from the start, no init stage. The default is that
form (``init_epochs`` 0), so that the table this benchmark reproduces is what runs by default and
its number is comparable; ``init_epochs`` > 0 adds the paper's stage 1 before it, as the engine's
init stage (``Method.init_stage``): ``init_epochs`` epochs of beta * MSE alone, training the student
and the regressor (the student's layers past the guided layer get no gradient, so they stay as
initialised), at the schedule's base rate held constant, recorded as stage ``init``. Stage 2 stays
the benchmark form (CE + hint), not the paper's annealed KD.

Feature points: ``stage<hint_layer>`` (``stem`` for 0) of both models.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from baselines.connectors import ConvReg
from bench.errors import ConfigError
from bench.method import LossInputs, Method
from bench.registry import METHODS


def hint_point(layer: int) -> str:
    """RepDistiller's ``feat[hint_layer]`` as a feature point: 0 the stem, k the output of stage k."""
    return "stem" if layer == 0 else f"stage{layer}"


@METHODS.register("fitnet")
class FitNet(Method):
    """FitNets hint on a middle stage, single-stage by default; see the module docstring."""

    defaults = {"beta": 100.0, "hint_layer": 2, "init_epochs": 0}
    ranges = {"beta": "[0, inf)", "hint_layer": "[0, 16]", "init_epochs": "[0, inf)"}
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols
    init_stage = True
    #: the points at the default ``hint_layer`` (2); an instance reads its own ``hint_layer``'s. Declared on
    #: the class too, so that what is checked before an instance exists (``--teacher`` applies) is right.
    student_features = teacher_features = (hint_point(2),)

    def __init__(self, **hparams: Any):
        super().__init__(**hparams)
        layer = self.hparams["hint_layer"]
        if layer != int(layer):
            raise ConfigError(f"method fitnet: hyperparameter 'hint_layer' must be a whole number, got {layer!r}")
        self.point = hint_point(int(layer))
        self.student_features = self.teacher_features = (self.point,)

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        return ConvReg(student_shapes[self.point], teacher_shapes[self.point])

    def hint(self, inputs: LossInputs, extras: nn.Module) -> torch.Tensor:
        return self.hparams["beta"] * F.mse_loss(extras(inputs.student[self.point]), inputs.teacher[self.point])

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        terms = dict(inputs.task_losses)
        terms["hint"] = self.hint(inputs, extras)
        return terms

    def init_losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        return {"hint": self.hint(inputs, extras)}
