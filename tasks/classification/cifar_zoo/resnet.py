"""CIFAR ResNets of depth 6n+2 (He et al. 2016, Sec. 4.2), as in HobbitLong/RepDistiller ``models/resnet.py``.

A 3x3 stem conv, then three stages of n basic blocks at strides 1, 2, 2, global
average pooling and a linear classifier. ``resnet<d>`` has widths 16/16/32/64
(stem/stages); ``resnet8x4`` and ``resnet32x4`` are the 4x wider variants of the
CRD table (32/64/128/256). Module names equal the reference's, so its state
dicts (``conv1``, ``bn1``, ``layer<k>.<i>.conv1``, ``...downsample.0``, ``fc``)
load unchanged. Blocks return one tensor; the reference's last block of each
stage also returns its pre-activation (for ``is_feat=True, preact=True``), which
here passes through each block's :class:`PreActivation` marker (``stage<k>.preact``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasks.classification.cifar_zoo.init import he_fan_out
from tasks.classification.cifar_zoo.layers import WindowAvgPool
from tasks.classification.cifar_zoo.registration import PreActivation, register, stage_points


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut (identity, or 1x1 conv-BN when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.preact = PreActivation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(self.preact(out + shortcut))


class CifarResNet(nn.Module):
    """See the module docstring; ``widths`` = (stem, stage1, stage2, stage3)."""

    def __init__(self, depth: int, widths: tuple[int, int, int, int], num_classes: int):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 (20, 32, 56, ...), got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        cin = widths[0]
        for k, (cout, stride) in enumerate(zip(widths[1:], (1, 2, 2), strict=True), start=1):
            blocks = [BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n)]
            self.add_module(f"layer{k}", nn.Sequential(*blocks))
            cin = cout
        self.avgpool = WindowAvgPool()
        self.fc = nn.Linear(widths[3], num_classes)
        he_fan_out(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x))


def points(depth: int):
    """Feature points of ``CifarResNet(depth)``: a stage's pre-activation is its last block's."""
    last = (depth - 2) // 6 - 1
    stages = ("layer1", "layer2", "layer3")
    return stage_points("relu", stages, "avgpool", tuple(f"{s}.{last}.preact" for s in stages))


_NARROW, _WIDE = (16, 16, 32, 64), (32, 64, 128, 256)
for _depth in (8, 14, 20, 32, 44, 56, 110):
    register(f"resnet{_depth}", lambda c, d=_depth: CifarResNet(d, _NARROW, c), points(_depth),
             f"CIFAR ResNet-{_depth} (widths 16/32/64), RepDistiller resnet{_depth}.")
for _depth in (8, 32):
    register(f"resnet{_depth}x4", lambda c, d=_depth: CifarResNet(d, _WIDE, c), points(_depth),
             f"CIFAR ResNet-{_depth} with 4x widths (64/128/256 after a 32-wide stem), RepDistiller "
             f"resnet{_depth}x4.")
