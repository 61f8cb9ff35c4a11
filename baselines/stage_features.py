"""Shared pieces of the classification feature methods (AT, NST, VID, KD-SVD, SP, ...).

Feature points follow RepDistiller's ``is_feat`` list (HobbitLong/RepDistiller
``train_student.py``, ``helper/loops.py``): the methods that read "every stage"
use ``feat[1:-1]``, i.e. ``stage1``..``stageN``; how many stages a model has is
the ``stages`` hyperparameter (3 for the tiny family and the CIFAR ResNets and
WRNs, 4 for vgg, MobileNetV2 and ResNet50), since a method's feature points are
fixed before any model is built.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from bench.errors import ConfigError
from bench.method import LossInputs, Method


def match_spatial(f_s: torch.Tensor, f_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two maps at the smaller one's spatial size: the larger is average-pooled down
    (``adaptive_avg_pool2d``, as RepDistiller's AT, NST and VID do; they compare heights only,
    assuming square maps, and this takes each side's minimum)."""
    size = (min(f_s.shape[2], f_t.shape[2]), min(f_s.shape[3], f_t.shape[3]))
    if tuple(f_s.shape[2:]) != size:
        f_s = F.adaptive_avg_pool2d(f_s, size)
    if tuple(f_t.shape[2:]) != size:
        f_t = F.adaptive_avg_pool2d(f_t, size)
    return f_s, f_t


def stage_points(count: int, suffix: str = "") -> tuple[str, ...]:
    """``("stage1", ..., "stage<count>")``, each name followed by ``suffix`` (``".preact"``: the stages'
    pre-activations, RepDistiller's ``preact=True``)."""
    return tuple(f"stage{k}{suffix}" for k in range(1, count + 1))


class StageMethod(Method):
    """A method reading ``stage1``..``stage<stages>`` of both models (RepDistiller's ``feat[1:-1]``).

    A subclass declares ``stages`` in its defaults (and may narrow its range), computes one
    term per stage pair and returns ``beta * sum``; see :meth:`stage_pairs`. A method that reads the
    pre-activations (``stage<k>.preact``) sets ``student_suffix`` / ``teacher_suffix`` to ``".preact"``.
    """

    student_features: ClassVar[tuple[str, ...]] = stage_points(3)
    teacher_features: ClassVar[tuple[str, ...]] = stage_points(3)
    student_suffix: ClassVar[str] = ""
    teacher_suffix: ClassVar[str] = ""
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def __init__(self, **hparams: Any):
        super().__init__(**hparams)
        count = self.hparams["stages"]
        if count != int(count):
            raise ConfigError(f"method {self.registered_name()}: hyperparameter 'stages' must be a whole "
                              f"number, got {count!r}")
        self.student_features = stage_points(int(count), self.student_suffix)
        self.teacher_features = stage_points(int(count), self.teacher_suffix)

    def stage_pairs(self, inputs: LossInputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(student, teacher) feature of each stage, in order."""
        return [(inputs.student[s], inputs.teacher[t])
                for s, t in zip(self.student_features, self.teacher_features, strict=True)]


def with_term(inputs: LossInputs, name: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    """The task's losses at weight 1 (RepDistiller ``-r 1``; no KD term, ``-a 0``) plus ``name``."""
    terms = dict(inputs.task_losses)
    terms[name] = value
    return terms
