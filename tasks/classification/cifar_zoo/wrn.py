"""Wide residual networks WRN-d-k (Zagoruyko & Komodakis 2016), as in HobbitLong/RepDistiller ``models/wrn.py``.

A 3x3 stem conv to 16 channels, three stages of (d-4)/6 pre-activation blocks
(BN-ReLU-conv, BN-ReLU-conv) at widths 16k/32k/64k and strides 1, 2, 2, a final
BN-ReLU, global average pooling and a linear classifier. Where a block changes
the shape, its 1x1 shortcut conv (``convShortcut``) reads the pre-activated
input, as in the reference. Dropout is 0 in every registered variant and is left
out. Module names (``block<k>.layer.<i>.bn1``, ``convShortcut``, ``bn1``, ``fc``)
equal the reference's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasks.classification.cifar_zoo.init import he_fan_out
from tasks.classification.cifar_zoo.layers import WindowAvgPool
from tasks.classification.cifar_zoo.registration import register, stage_points


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the input (or a 1x1 conv of the pre-activated input)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        # the reference's attribute name, kept so its state dicts load
        self.convShortcut = None if cin == cout else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        shortcut = x if self.convShortcut is None else self.convShortcut(pre)
        return shortcut + out


class Stage(nn.Module):
    """A stage of blocks held as ``layer`` (the reference's ``NetworkBlock``)."""

    def __init__(self, n: int, cin: int, cout: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*(PreActBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                     for i in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """See the module docstring."""

    def __init__(self, depth: int, widen: int, num_classes: int):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4 (16, 40, ...), got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.block1 = Stage(n, widths[0], widths[1], 1)
        self.block2 = Stage(n, widths[1], widths[2], 2)
        self.block3 = Stage(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU()
        self.pool = WindowAvgPool()
        self.fc = nn.Linear(widths[3], num_classes)
        he_fan_out(self, zero_linear_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(self.pool(self.relu(self.bn1(x))))


# stem and stages are the reference's f0..f3: the stage outputs before the next block's BN-ReLU
# ``stage<k>.preact``: the reference's ``preact=True`` returns f1..f3 through the BN that reads them next
# (``block2.layer[0].bn1(f1)``, ``block3.layer[0].bn1(f2)``, ``bn1(f3)``), i.e. those modules' outputs here
POINTS = stage_points("conv1", ("block1", "block2", "block3"), "pool",
                      ("block2.layer.0.bn1", "block3.layer.0.bn1", "bn1"))

for _depth, _widen in ((16, 1), (16, 2), (40, 1), (40, 2)):
    register(f"wrn_{_depth}_{_widen}", lambda c, d=_depth, k=_widen: WideResNet(d, k, c), POINTS,
             f"WRN-{_depth}-{_widen} for 32x32 inputs, RepDistiller wrn_{_depth}_{_widen}.")
