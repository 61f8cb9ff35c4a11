"""ReviewKD: Chen, Liu, Zhao, Jia, "Distilling Knowledge via Knowledge Review", CVPR 2021.

Each student level is taught by the teacher's level *and* the deeper ones: the student's features
(``stage1``..``stageN`` and the pooled embedding as a 1x1 map) are fused from the deepest up by
attention-based fusion (ABF) modules and compared to the teacher's by the hierarchical context loss:

    ABF_i(x_i, r_{i+1}):  x = BN(conv1x1(x_i));  [a, b] = sigmoid(conv1x1([x, up(r_{i+1})]))
                          r_i = a * x + b * up(r_{i+1})  (the deepest level has no r: r = x)
                          y_i = BN(conv3x3(resize(r_i, teacher's size)))
    HCL(y, t) = (mse(y, t) + sum_{l in 4,2,1, l < h} 2^-k mse(pool_l(y), pool_l(t))) / (1 + sum 2^-k)
    L = CE + w * min(epoch / W, 1) * sum_levels HCL(y_i, t_i)

with k = 1, 2, 3 counting the pooled sizes used, ``up`` nearest-neighbour interpolation to x_i's
size, the mid channel count min(512, C of the student's embedding), and the ABFs as extras
(conv1/conv2 Kaiming-uniform with a = 1, as the reference). Defaults: w = 5, W = 20 of 240 epochs,
CE weight 1: mdistiller ``configs/cifar100/reviewkd.yaml`` (resnet32x4 -> resnet8x4,
``REVIEWKD_WEIGHT: 5.0``; ``CFG.REVIEWKD.WARMUP_EPOCHS`` 20, ``CE_WEIGHT`` 1) and the authors'
``CIFAR-100/script/reviewKD.sh`` (``--kd-loss-weight 5.0`` for the WRN and resnet32x4 pairs; 0.6 for
resnet56 -> resnet20 and 1.0 for resnet110 -> resnet32; the argparse and ``CFG`` default is 1.0).
The warm-up is scaled to the protocol's length (:mod:`baselines.warmup`). Feature points: the
student's ``stage1``..``stage<stages>`` and ``embedding``, the teacher's pre-activations
``stage1.preact``..``stage<stages>.preact`` and ``embedding`` (mdistiller reads the teacher's
``preact_feats`` and, with its default ``STU_PREACT: False``, the student's ``feats``); ``stages`` as
for the other stage methods (:mod:`baselines.stage_features`).

Reference: mdistiller ``mdistiller/distillers/ReviewKD.py`` (``ABF``, ``hcl_loss``, ``forward_train``)
and dvlab-research/ReviewKD ``CIFAR-100/model/reviewkd.py``. Deviations: the warm-up counts epochs
from 1 as mdistiller does (the authors' ``train.py`` counts from 0, so its first epoch has weight 0);
the reference's fixed
``SHAPES``/``OUT_SHAPES`` per architecture are read from the recorded feature sizes instead.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from baselines.stage_features import StageMethod, stage_points
from baselines.warmup import EpochWarmup
from bench.method import LossInputs
from bench.registry import METHODS


def as_map(feature: torch.Tensor) -> torch.Tensor:
    """A B x C x H x W map; the pooled embedding (B x C or B x C x 1 x 1) becomes B x C x 1 x 1."""
    return feature if feature.ndim == 4 else feature.reshape(feature.shape[0], -1, 1, 1)


def map_shape(shape: Any) -> tuple[int, int, int]:
    """(C, H, W) of a recorded feature's shape, a pooled vector read as C x 1 x 1."""
    return (shape[1], shape[2], shape[3]) if len(shape) == 4 else (shape[1], 1, 1)


class ABF(nn.Module):
    """Attention-based fusion of one student level with the fused deeper levels."""

    def __init__(self, in_channel: int, mid_channel: int, out_channel: int, fuse: bool):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channel, mid_channel, kernel_size=1, bias=False),
                                   nn.BatchNorm2d(mid_channel))
        self.conv2 = nn.Sequential(nn.Conv2d(mid_channel, out_channel, kernel_size=3, padding=1, bias=False),
                                   nn.BatchNorm2d(out_channel))
        self.att_conv = nn.Sequential(nn.Conv2d(mid_channel * 2, 2, kernel_size=1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None,
                out_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(the output at ``out_size``, the fused map passed to the next shallower level)."""
        x = self.conv1(x)
        if self.att_conv is not None:
            residual = F.interpolate(residual, x.shape[2:], mode="nearest")
            z = self.att_conv(torch.cat([x, residual], dim=1))
            x = x * z[:, 0:1] + residual * z[:, 1:2]
        if tuple(x.shape[2:]) != tuple(out_size):
            x = F.interpolate(x, out_size, mode="nearest")
        return self.conv2(x), x


class ReviewFusion(nn.Module):
    """The ABFs, shallowest level first; :meth:`forward` runs them from the deepest up."""

    def __init__(self, student: list[tuple[int, int, int]], teacher: list[tuple[int, int, int]]):
        super().__init__()
        mid = min(512, student[-1][0])
        last = len(student) - 1
        self.abfs = nn.ModuleList(ABF(s[0], mid, t[0], fuse=i < last)
                                  for i, (s, t) in enumerate(zip(student, teacher, strict=True)))
        self.out_sizes = [(t[1], t[2]) for t in teacher]

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        results: list[torch.Tensor] = []
        residual = None
        for i in reversed(range(len(features))):
            out, residual = self.abfs[i](features[i], residual, self.out_sizes[i])
            results.insert(0, out)
        return results


def hcl_loss(students: list[torch.Tensor], teachers: list[torch.Tensor]) -> torch.Tensor:
    """The hierarchical context loss summed over the levels (mdistiller ``hcl_loss``)."""
    total = 0.0
    for fs, ft in zip(students, teachers, strict=True):
        h = fs.shape[2]
        loss, weight, norm = F.mse_loss(fs, ft), 1.0, 1.0
        for size in (4, 2, 1):
            if size >= h:
                continue
            weight /= 2.0
            loss = loss + F.mse_loss(F.adaptive_avg_pool2d(fs, size), F.adaptive_avg_pool2d(ft, size)) * weight
            norm += weight
        total = total + loss / norm
    return total


@METHODS.register("review-kd")
class ReviewKD(EpochWarmup, StageMethod):
    """Knowledge review: ABF fusion and the HCL loss on every stage and the embedding."""

    defaults = {"weight": 5.0, "warmup_epochs": None, "stages": 3}
    ranges = {"weight": "[0, inf)", "warmup_epochs": "[0, inf)", "stages": "[1, 16]"}
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    student_features = (*stage_points(3), "embedding")
    teacher_features = (*stage_points(3, ".preact"), "embedding")
    teacher_suffix = ".preact"

    def __init__(self, **hparams: Any):
        super().__init__(**hparams)  # StageMethod checks ``stages`` and sets the stage points
        self.student_features = (*self.student_features, "embedding")
        self.teacher_features = (*self.teacher_features, "embedding")

    def build_extras(self, student_shapes, teacher_shapes) -> nn.Module:
        return ReviewFusion([map_shape(student_shapes[p]) for p in self.student_features],
                            [map_shape(teacher_shapes[p]) for p in self.teacher_features])

    def losses(self, inputs: LossInputs, extras: ReviewFusion) -> dict[str, torch.Tensor]:
        fused = extras([as_map(inputs.student[p]) for p in self.student_features])
        teacher = [as_map(inputs.teacher[p]) for p in self.teacher_features]
        terms = dict(inputs.task_losses)
        terms["review"] = self.hparams["weight"] * self.warmup_factor() * hcl_loss(fused, teacher)
        return terms
