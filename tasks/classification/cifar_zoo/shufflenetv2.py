"""ShuffleNet V2 1x for CIFAR (Ma et al. 2018), as in HobbitLong/RepDistiller ``models/ShuffleNetv2.py``.

RepDistiller's ``ShuffleV2`` (net size 1): a 1x1 stem conv to 24 channels (no
stride, no max pooling, for 32x32 inputs), three stages of widths 116/232/464,
each a stride-2 down-sampling unit followed by 3/7/3 basic units, a 1x1 conv
to 1024 channels, global average pooling and a linear classifier. A basic unit
splits the channels in half, transforms one half (1x1, 3x3 depthwise, 1x1)
and shuffles the concatenation with 2 groups; the down-sampling unit runs two
branches on the whole input. Module names (``layer<k>.0.conv1..conv5``,
``layer<k>.<i>.conv1..conv3``, ``conv2``, ``bn2``, ``linear``) equal the
reference's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasks.classification.cifar_zoo.layers import WindowAvgPool, channel_shuffle
from tasks.classification.cifar_zoo.registration import PreActivation, register, stage_points


class BasicUnit(nn.Module):
    """Channel split; one half through 1x1-BN-ReLU, 3x3 depthwise-BN, 1x1-BN-ReLU; concat and shuffle."""

    def __init__(self, channels: int, last: bool = False):
        super().__init__()
        half = channels // 2
        # the last unit of a stage records the reference's ``is_last`` pre-activation (``stage<k>.preact``):
        # the kept half and the branch before its last ReLU, concatenated, before the shuffle
        self.preact = PreActivation() if last else None
        self.conv1 = nn.Conv2d(half, half, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1] // 2
        kept, moved = x[:, :c], x[:, c:]
        out = self.bn3(self.conv3(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(moved)))))))
        if self.preact is not None:
            self.preact(torch.cat([kept, out], 1))
        return channel_shuffle(torch.cat([kept, F.relu(out)], 1), 2)


class DownUnit(nn.Module):
    """Two stride-2 branches on the whole input (3x3 depthwise then 1x1; 1x1, 3x3 depthwise, 1x1),
    each to half the output width; concat and shuffle."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.conv1 = nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv2 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = self.bn4(self.conv4(F.relu(self.bn3(self.conv3(x)))))
        right = F.relu(self.bn5(self.conv5(right)))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(nn.Module):
    """See the module docstring."""

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (116, 232, 464), units: tuple[int, ...] = (3, 7, 3),
                 last_channels: int = 1024):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.relu1 = nn.ReLU()
        cin = 24
        for k, (cout, n) in enumerate(zip(widths, units, strict=True), start=1):
            units_k = (BasicUnit(cout, last=i == n - 1) for i in range(n))
            self.add_module(f"layer{k}", nn.Sequential(DownUnit(cin, cout), *units_k))
            cin = cout
        self.conv2 = nn.Conv2d(cin, last_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(last_channels)
        self.relu2 = nn.ReLU()
        self.pool = WindowAvgPool()
        self.linear = nn.Linear(last_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(self.pool(self.relu2(self.bn2(self.conv2(x)))))


POINTS = stage_points("relu1", ("layer1", "layer2", "layer3"), "pool",
                      ("layer1.3.preact", "layer2.7.preact", "layer3.3.preact"))

register("ShuffleNetV2", ShuffleNetV2, POINTS,
         "ShuffleNet V2 1x (widths 116/232/464) for 32x32 inputs, RepDistiller ShuffleV2.")
