"""FSP: Yim, Joo, Bae, Kim, "A Gift from Knowledge Distillation: Fast Optimization, Network
Minimization and Transfer Learning", CVPR 2017, in RepDistiller's form.

The "flow of solution procedure" between two consecutive feature maps F1 (C1 channels) and F2 (C2)
of the same spatial size is their Gram matrix over positions, G = F1 F2^T / (h w) (C1 x C2; the
larger map is average-pooled to the smaller one's size first). The student learns the teacher's:

    L_init = sum_i mean((G_s,i - G_t,i)^2)

over the pairs (stem, stage1), (stage1, stage2), ..., (stage<n-1>, stage<n>) (RepDistiller's
``feat[:-1]``; HobbitLong/RepDistiller ``distiller_zoo/FSP.py``). Two stages, as the paper and
RepDistiller run it: an init stage (``Method.init_stage``) minimises L_init alone, training the
student, for ``init_epochs`` epochs at the schedule's base rate held constant (RepDistiller
``helper/pretrain.py`` ``init``, 30 of 240 epochs; default here: the same eighth of the protocol's
epochs, resolved by the runner); the main run is plain cross-entropy from that initialisation
(``loops.py`` sets ``loss_kd = 0`` for FSP; its ``-b 50`` weighs nothing, and the init stage
sums the terms unweighted, so there is no weight hyperparameter).

Feature points: ``stem``, ``stage1``..``stage<stages>`` of both models.

Deviation: FSP needs equal channel counts (RepDistiller raises otherwise, and the paper pairs
models of equal widths). Where the student's channels differ from the teacher's at a point (the
tiny family's teachers are wider), a 1x1 conv adapter (no bias) maps the student's feature to the
teacher's channels before the Gram matrices; the adapters train with the student in the init
stage and are counted as extra parameters. Equal channels (resnet32x4 -> resnet8x4, WRN pairs)
take no adapter, exactly RepDistiller's loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from baselines.connectors import adapt, channel_adapters
from baselines.stage_features import StageMethod
from bench.method import LossInputs
from bench.registry import METHODS


def fsp_matrix(bottom: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
    """(B, C_bottom, C_top): the mean over positions of bottom_c * top_d, the larger map pooled first."""
    size = min(bottom.shape[2], top.shape[2])
    if bottom.shape[2] > size:
        bottom = F.adaptive_avg_pool2d(bottom, (size, size))
    if top.shape[2] > size:
        top = F.adaptive_avg_pool2d(top, (size, size))
    return torch.einsum("bchw,bdhw->bcd", bottom, top) / (bottom.shape[2] * bottom.shape[3])


def fsp_losses(g_s: list[torch.Tensor], g_t: list[torch.Tensor]) -> list[torch.Tensor]:
    """``mean((G_s - G_t)^2)`` for each consecutive pair of the feature lists."""
    return [(fsp_matrix(g_s[i], g_s[i + 1]) - fsp_matrix(g_t[i], g_t[i + 1])).pow(2).mean()
            for i in range(len(g_s) - 1)]


@METHODS.register("fsp")
class FSP(StageMethod):
    """FSP-matrix initialisation, then cross-entropy; see the module docstring."""

    defaults = {"stages": 3, "init_epochs": None}
    ranges = {"stages": "[1, 16]", "init_epochs": "[0, inf)"}
    init_stage = True

    def __init__(self, **hparams: Any):
        super().__init__(**hparams)
        self.student_features = self.teacher_features = ("stem", *self.student_features)

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module | None:
        return channel_adapters(self.student_features, student_shapes, teacher_shapes)

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        return dict(inputs.task_losses)

    def init_losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        g_s = [adapt(extras, p, inputs.student[p]) for p in self.student_features]
        g_t = [inputs.teacher[p] for p in self.teacher_features]
        return {"fsp": sum(fsp_losses(g_s, g_t))}
