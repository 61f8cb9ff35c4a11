"""CC, correlation congruence: Peng, Jin, Liu, Li, Wu, Liu, Zhou, Zhang, "Correlation Congruence for
Knowledge Distillation", ICCV 2019 -- in RepDistiller's simplified form, not the paper's kernel form.

The form implemented is the one the CRD table was run with (RepDistiller
``distiller_zoo/CC.py``, "the authors nicely shared the code with me"): both pooled
embeddings go through a trainable linear embedding to 128 dimensions (RepDistiller
``LinearEmbed``, ``--feat_dim 128``; no normalisation), then with
delta_i = |E_s(e_s_i) - E_t(e_t_i)| (element-wise, per sample i of the batch)

    L_cc = mean_{i < B} sum_d delta_i,d * delta_{i+1},d,     L = CE + beta * L_cc

i.e. the correlation of consecutive samples' embedding differences. Defaults as in the CRD
table (RepDistiller ``scripts/run_cifar_distill.sh``: ``--distill correlation -r 1 -a 0 -b
0.02``): beta = 0.02, embedding size 128, CE weight 1, no KD term. Feature point: the pooled
embedding, ``embedding`` (RepDistiller ``feat_s[-1]``). Both linear embeddings (student's and
teacher's side) are extras trained with the student, as RepDistiller trains them.

Not implemented: the paper's form (a Taylor-approximated Gaussian RBF correlation matrix,
gamma = 0.4, P = 2, compared as ||C_s - C_t||^2 / B^2; torchdistill ``CCKDLoss``).
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.stage_features import with_term
from bench.method import LossInputs, Method
from bench.registry import METHODS


def cc_loss(z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """mean over consecutive sample pairs of sum_d |z_s - z_t|_i,d * |z_s - z_t|_{i+1},d."""
    delta = (z_s - z_t).abs()
    return (delta[:-1] * delta[1:]).sum(1).mean()


@METHODS.register("cc")
class CorrelationCongruence(Method):
    """Correlation congruence (RepDistiller's form) on the pooled embedding; see the module docstring."""

    defaults = {"beta": 0.02, "feat_dim": 128}
    ranges = {"beta": "[0, inf)", "feat_dim": "[1, inf)"}
    student_features = ("embedding",)
    teacher_features = ("embedding",)
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        dim = int(self.hparams["feat_dim"])
        return nn.ModuleDict({"student": nn.Linear(student_shapes["embedding"][1], dim),
                              "teacher": nn.Linear(teacher_shapes["embedding"][1], dim)})

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        z_s = extras["student"](inputs.student["embedding"].flatten(1))
        z_t = extras["teacher"](inputs.teacher["embedding"].flatten(1))
        return with_term(inputs, "cc", self.hparams["beta"] * cc_loss(z_s, z_t))
