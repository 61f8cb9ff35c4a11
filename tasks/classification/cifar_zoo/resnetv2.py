"""ResNet-50 for CIFAR (He et al. 2016), as in HobbitLong/RepDistiller ``models/resnetv2.py`` (``ResNet50``).

The ImageNet ResNet-50's bottleneck stages (3, 4, 6, 3 blocks; widths 64, 128,
256, 512 with expansion 4; strides 1, 2, 2, 2) after a 3x3 stride-1 stem conv
to 64 channels without max pooling, so 32x32 inputs end at 4x4; global average
pooling and a linear classifier from 2048 features. Module names (``conv1``,
``bn1``, ``layer<k>.<i>.conv1..conv3``, ``...shortcut.0/1``, ``linear``) equal
the reference's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasks.classification.cifar_zoo.init import he_fan_out
from tasks.classification.cifar_zoo.layers import adaptive_pool
from tasks.classification.cifar_zoo.registration import PreActivation, register, stage_points


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand by 4; identity or 1x1 conv-BN shortcut."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()  # identity, as in the reference (no state-dict keys)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.preact = PreActivation()  # the reference's ``is_last`` pre-activation (``stage<k>.preact``)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(self.preact(out + self.shortcut(x)))


class CifarResNet50(nn.Module):
    """See the module docstring."""

    def __init__(self, num_classes: int, blocks: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        cin = 64
        for k, (planes, n, stride) in enumerate(zip((64, 128, 256, 512), blocks, (1, 2, 2, 2), strict=True), start=1):
            stage = []
            for i in range(n):
                stage.append(Bottleneck(cin, planes, stride if i == 0 else 1))
                cin = planes * Bottleneck.expansion
            self.add_module(f"layer{k}", nn.Sequential(*stage))
        self.avgpool = adaptive_pool()
        self.linear = nn.Linear(cin, num_classes)
        he_fan_out(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(self.avgpool(x))


STAGES = ("layer1", "layer2", "layer3", "layer4")
POINTS = stage_points("relu", STAGES, "avgpool",
                      tuple(f"{s}.{n - 1}.preact" for s, n in zip(STAGES, (3, 4, 6, 3), strict=True)))

register("ResNet50", CifarResNet50, POINTS,
         "ResNet-50 (bottleneck 3-4-6-3) with a CIFAR stem for 32x32 inputs, RepDistiller resnetv2.ResNet50.")
