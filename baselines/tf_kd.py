"""Tf-KD_reg: Yuan, Tay, Li, Wang, Feng, "Revisiting Knowledge Distillation via Label Smoothing
Regularization", CVPR 2020 (arXiv title "Revisit Knowledge Distillation: a Teacher-free Framework").

No teacher model: a manually designed *virtual teacher* puts probability 0.99 on the true class and
0.01/(K-1) on every other class, and is softened at temperature T as the authors' code does it
(``my_loss_function.py`` ``loss_kd_regularization``), i.e. the soft target is softmax of those
*probabilities* divided by T, close to uniform with a slight peak on the true class:

    u_k   = 0.99 if k = y else 0.01 / (K - 1)
    q     = softmax(u / T)
    L     = (1 - a) * CE(z, y) + a * m * KL(q || softmax(z)) / K

The student side has no temperature. The KL is the authors' ``nn.KLDivLoss()`` with its default
element-wise mean over the batch *and* the K classes, hence the ``/ K`` after the batch mean of the
class sum; the multiplier m was tuned with that reduction, so it is kept (``reference/methods.md``,
section 1 pitfall).

Defaults: T=40, a=0.95, m=1, the authors' setting for their small model, MobileNetV2
(``experiments/base_experiments/base_mobilenetv2/params.json``: ``reg_temperature`` 40,
``reg_alpha`` 0.95, ``multiplier`` 1; README table CIFAR-100 68.38 -> 70.88). ResNet18 uses T=20,
a=0.1, m=100 (``base_resnet18``), ShuffleNetV2 T=10, a=0.95, m=1.

Feature points: the logits only. Deviations: none in the loss; the schedule is the protocol's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.kd import kl_map
from bench.method import LossInputs, Method
from bench.registry import METHODS

CORRECT_PROB = 0.99


def virtual_teacher(targets: torch.Tensor, num_classes: int, temperature: float) -> torch.Tensor:
    """log q: the log of softmax(u / T), u the 0.99 / 0.01/(K-1) distribution of each target."""
    u = torch.full((len(targets), num_classes), (1 - CORRECT_PROB) / (num_classes - 1), device=targets.device)
    u[torch.arange(len(targets), device=targets.device), targets] = CORRECT_PROB
    return F.log_softmax(u / temperature, dim=1)


@METHODS.register("tf-kd")
class TfKDReg(Method):
    """Teacher-free KD with the manually designed virtual teacher (Tf-KD_reg); see the module docstring."""

    defaults = {"T": 40.0, "alpha": 0.95, "multiplier": 1.0}
    ranges = {"T": "(0, inf)", "alpha": "[0, 1]", "multiplier": "[0, inf)"}
    teacher_features = ()
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        h = self.hparams
        logits = inputs.student["logits"]
        num_classes = logits.shape[1]
        target = virtual_teacher(inputs.targets, num_classes, h["T"])
        terms = {name: (1 - h["alpha"]) * value for name, value in inputs.task_losses.items()}
        terms["virtual_teacher"] = h["alpha"] * h["multiplier"] * kl_map(logits, target, 1.0).mean() / num_classes
        return terms
