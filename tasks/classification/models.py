"""Small residual CNNs for 32x32 classification, built from scratch (no pretrained weights).

``tinyresnet_<w>``: a stride-2 stem, then three stages of one basic residual
block each at widths (w, 2w, 4w) and strides (1, 2, 2), global average pooling
and a linear classifier. MACs scale with w^2 (about 12 M at w=32, 1.7 M at
w=12 on 32x32 inputs), so teacher and student of one family differ only in width.

Feature points (RepDistiller's ``is_feat`` names, as the CIFAR zoo declares them):
``stem`` is the stem's output (after its ReLU), ``stage1``..``stage3`` the
post-activation output of each stage's block, ``backbone.out`` the last stage's
output (the same tensor as ``stage3``, before pooling), ``embedding`` the pooled
vector that feeds the classifier, and ``stage<k>.preact`` stage k's block output
before its last ReLU (RepDistiller's ``preact=True``; AB and ReviewKD read it),
recorded at a parameter-free marker, so every parameter and checkpoint is unchanged.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from bench.registry import register_widths
from tasks.classification.cifar_zoo.registration import PreActivation


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut (He et al. 2016)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)
        self.preact = PreActivation()  # ``stage<k>.preact``: the sum before the last ReLU (not in place)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return F.relu(self.preact(self.bn2(self.conv2(out)) + self.shortcut(x)))


class TinyResNet(nn.Module):
    """See the module docstring."""

    def __init__(self, width: int, num_classes: int):
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.stages = nn.Sequential(
            BasicBlock(width, widths[0], 1), BasicBlock(widths[0], widths[1], 2), BasicBlock(widths[1], widths[2], 2)
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(widths[2], num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.stages(self.stem(x))))


TINYRESNET_FEATURE_POINTS = {"stem": "stem", "stage1": "stages.0", "stage2": "stages.1", "stage3": "stages.2",
                             "backbone.out": "stages", "embedding": "pool",
                             **{f"stage{k}.preact": f"stages.{k - 1}.preact" for k in (1, 2, 3)}}


register_widths("tinyresnet_", TinyResNet, (4, 6, 8, 12, 16, 20, 24, 32, 48), "TinyResNet of base width {width}.")
