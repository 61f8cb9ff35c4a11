"""CA-MKD: Zhang, Chen, Wang, "Confidence-Aware Multi-Teacher Knowledge Distillation", ICASSP 2022.

Each teacher k gets a per-sample weight from how well it predicts the label:

    w_k = (1 - softmax_k(CE(z_k, y))) / (K - 1)          (softmax over the K teachers; sum_k w_k = 1)

and the weights scale both a KD term on the logits and a feature term on the
representation the classifier reads (the student's, through one learned linear
or 1x1-conv projector per teacher):

    L = g * L_task + a * (1/K) * mean_i sum_k w_ki * T^2 * KL_ki
                   + b * (1/K) * mean_i sum_k w_ki * mean_d (P_k(f_s) - f_k)^2_id

The 1/K factors and g=1, a=1, b=50, T=4 follow the authors' code
(Rorozhl/CA-MKD ``helper/loops.py``, ``distiller_zoo/CAMKD.py``, ``-r 1 -a 1 -b 50``).
For segmentation the weights are per pixel for the KD term (ignored pixels have
CE 0 for every teacher, hence equal weights) and their per-image mean for the
feature term.

Deviations: the authors' feature weights come from the CE of each teacher's
classifier applied to the projected *student* feature; here both terms use the
teachers' own CE (one weight per teacher and sample). The authors switch the
feature term on after the first epoch; here it is on from the start.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.kd import kl_map
from bench.method import LossInputs, Method
from bench.registry import METHODS

FEATURE = "embedding"


def confidence_weights(teacher_logits: list[torch.Tensor], targets: torch.Tensor,
                       ignore_index: int = -100) -> torch.Tensor:
    """``w`` of shape ``(K, *targets.shape)``: ``(1 - softmax_k(CE_k)) / (K - 1)`` at every location."""
    ce = torch.stack([F.cross_entropy(z, targets, reduction="none", ignore_index=ignore_index)
                      for z in teacher_logits])
    return (1.0 - F.softmax(ce, dim=0)) / (len(teacher_logits) - 1)


def projector(student_shape: torch.Size, teacher_shape: torch.Size) -> nn.Module:
    """A linear map (vectors) or 1x1 convolution (maps) from the student's width to a teacher's."""
    if len(student_shape) == 2:
        return nn.Linear(student_shape[1], teacher_shape[1])
    return nn.Conv2d(student_shape[1], teacher_shape[1], 1)


@METHODS.register("ca-mkd")
class CAMKD(Method):
    """Confidence-aware multi-teacher KD; see the module docstring."""

    defaults = {"T": 4.0, "gamma": 1.0, "alpha": 1.0, "beta": 50.0}
    ranges = {"T": "(0, inf)", "gamma": "[0, inf)", "alpha": "[0, inf)", "beta": "[0, inf)"}
    student_features = ("logits", FEATURE)
    teacher_features = ("logits", FEATURE)
    tasks = ("classification", "segmentation")
    multi_teacher = True

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        return nn.ModuleList([projector(student_shapes[FEATURE], t[FEATURE]) for t in teacher_shapes])

    def losses(self, inputs: LossInputs, extras: nn.Module) -> dict[str, torch.Tensor]:
        h, teachers = self.hparams, inputs.teachers
        k = len(teachers)
        logits = [t["logits"] for t in teachers]
        ignore = getattr(inputs.task, "ignore_index", -100)
        weights = confidence_weights(logits, inputs.targets, ignore).detach()  # (K, B, ...)
        temperature = h["T"]
        kl = torch.stack([kl_map(inputs.student["logits"], F.log_softmax(z / temperature, dim=1), temperature)
                          for z in logits])  # (K, B, ...)
        terms = {name: h["gamma"] * value for name, value in inputs.task_losses.items()}
        terms["kd"] = h["alpha"] * (weights * kl).sum(dim=0).mean() / k
        sample_weights = weights.flatten(2).mean(dim=2) if weights.dim() > 2 else weights  # (K, B)
        feature = inputs.student[FEATURE]
        mse = torch.stack([(project(feature) - t[FEATURE]).pow(2).flatten(1).mean(dim=1)
                           for project, t in zip(extras, teachers, strict=True)])  # (K, B)
        terms["feature"] = h["beta"] * (sample_weights * mse).sum(dim=0).mean() / k
        return terms
