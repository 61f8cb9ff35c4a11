"""MobileNetV2 at width 0.5 for CIFAR (Sandler et al. 2018), as in HobbitLong/RepDistiller ``models/mobilenetv2.py``.

The CRD table's "MobileNetV2" is RepDistiller's ``mobile_half``: expansion 6,
width multiplier 0.5 on the inverted-residual stages (channels 8, 12, 16, 32,
48, 80, 160 after a 16-channel stride-2 stem), a 1x1 conv to 1280 channels
(not scaled, as in the reference), global average pooling and a linear
classifier. Stage strides are 1, 1, 2, 2, 1, 2, 1, so 32x32 inputs end at 2x2.
Module names (``conv1.<i>``, ``blocks.<s>.<b>.conv.<i>``, ``conv2.<i>``,
``classifier.0``) equal the reference's.
"""

from __future__ import annotations

import torch
from torch import nn

from tasks.classification.cifar_zoo.init import he_fan_out
from tasks.classification.cifar_zoo.layers import WindowAvgPool
from tasks.classification.cifar_zoo.registration import register, stage_points

#: (expansion, channels at width 1, blocks, first stride) per stage: the reference's setting with T = 6
SETTING = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
           (6, 320, 1, 1))


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise, linear 1x1 projection; residual when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        mid = cin * expansion
        self.use_residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, mid, 1, 1, 0, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """See the module docstring."""

    def __init__(self, num_classes: int, width: float = 0.5, last_channels: int = 1280):
        super().__init__()
        cin = int(32 * width)
        self.conv1 = conv_bn_relu(3, cin, 3, 2)
        self.blocks = nn.ModuleList()
        for expansion, channels, n, stride in SETTING:
            cout = int(channels * width)
            layers = []
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expansion))
                cin = cout
            self.blocks.append(nn.Sequential(*layers))
        self.conv2 = conv_bn_relu(cin, last_channels, 1, 1)
        self.avgpool = WindowAvgPool()
        self.classifier = nn.Sequential(nn.Linear(last_channels, num_classes))
        he_fan_out(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        return self.classifier(self.avgpool(self.conv2(x)))


# the reference's f1..f4 are the outputs of stages 1, 2, 4 and 6 (0-based), at 16, 8, 4 and 2 pixels
# the reference's forward ignores ``preact=True`` (its stages end without a ReLU), so ``stage<k>.preact`` is
# ``stage<k>``
POINTS = stage_points("conv1", ("blocks.1", "blocks.2", "blocks.4", "blocks.6"), "avgpool",
                      ("blocks.1", "blocks.2", "blocks.4", "blocks.6"))

register("MobileNetV2", MobileNetV2, POINTS,
         "MobileNetV2 with width 0.5 and expansion 6 for 32x32 inputs, RepDistiller mobile_half.")
