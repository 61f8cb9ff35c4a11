"""ShuffleNet V1 for CIFAR (Zhang et al. 2018), as in HobbitLong/RepDistiller ``models/ShuffleNetv1.py``.

RepDistiller's ``ShuffleV1``: 3 groups, stage widths 240/480/960 with 4/8/4
units, a 1x1 stem conv to 24 channels (no stride, no max pooling, for 32x32
inputs), global average pooling and a linear classifier. Each unit is a grouped
1x1 conv to a quarter of its output width, a channel shuffle, a 3x3 depthwise
conv and a grouped 1x1 conv; a stage's first unit has stride 2 and
concatenates a 3x3 average pooling of its input, the others add the input. As
in the reference, the first unit's grouped 1x1 conv takes 24 input channels
ungrouped. Module names (``conv1``, ``bn1``, ``layer<k>.<i>.conv<j>``,
``linear``) equal the reference's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasks.classification.cifar_zoo.layers import WindowAvgPool, channel_shuffle
from tasks.classification.cifar_zoo.registration import PreActivation, register, stage_points


class ShuffleUnit(nn.Module):
    """See the module docstring; ``cout`` is the width of the residual branch."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int):
        super().__init__()
        mid = cout // 4
        self.stride = stride
        self.first_groups = 1 if cin == 24 else groups
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.preact = PreActivation()  # the reference's ``is_last`` pre-activation (``stage<k>.preact``)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.first_groups)
        out = self.bn3(self.conv3(F.relu(self.bn2(self.conv2(out)))))
        if self.stride == 2:
            return F.relu(self.preact(torch.cat([out, F.avg_pool2d(x, 3, 2, 1)], 1)))
        return F.relu(self.preact(out + x))


class ShuffleNetV1(nn.Module):
    """See the module docstring."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (240, 480, 960), units: tuple[int, ...] = (4, 8, 4),
                 groups: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.relu = nn.ReLU()
        cin = 24
        for k, (cout, n) in enumerate(zip(widths, units, strict=True), start=1):
            # the stride-2 first unit's branch is narrower by the concatenated input
            stage = [ShuffleUnit(cin, cout - cin, 2, groups)]
            stage += [ShuffleUnit(cout, cout, 1, groups) for _ in range(n - 1)]
            self.add_module(f"layer{k}", nn.Sequential(*stage))
            cin = cout
        self.pool = WindowAvgPool()
        self.linear = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(self.pool(x))


POINTS = stage_points("relu", ("layer1", "layer2", "layer3"), "pool",
                      ("layer1.3.preact", "layer2.7.preact", "layer3.3.preact"))

register("ShuffleNetV1", ShuffleNetV1, POINTS,
         "ShuffleNet V1 (3 groups, widths 240/480/960) for 32x32 inputs, RepDistiller ShuffleV1.")
