"""VGG with batch norm for CIFAR (Simonyan & Zisserman 2015), as in HobbitLong/RepDistiller ``models/vgg.py``.

Five conv blocks (3x3 conv with bias, BN, ReLU) separated by 2x2 max pooling,
then global average pooling and one linear layer from 512 features (the
ImageNet VGG's fully connected head is removed). ``vgg8`` is configuration "S"
(one conv per block), ``vgg11``/``vgg13``/``vgg16``/``vgg19`` are A/B/D/E; all
are the reference's ``*_bn`` models. As in the reference, the max pooling
between blocks 3 and 4 is applied only to 64-pixel-high inputs, so at 32x32 the
last two blocks both run at 4x4. Module names (``block<k>.<i>``,
``classifier``) equal the reference's; each block's last ReLU is a separate
module (``relu<k>``) so that the post-activation output can be read.
"""

from __future__ import annotations

import torch
from torch import nn

from tasks.classification.cifar_zoo.init import he_fan_out
from tasks.classification.cifar_zoo.layers import adaptive_pool
from tasks.classification.cifar_zoo.registration import register, stage_points

CONFIGS = {
    "vgg8": ((64,), (128,), (256,), (512,), (512,)),
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512)),
}


def conv_block(cin: int, widths: tuple[int, ...]) -> nn.Sequential:
    """conv-BN-ReLU repeated, without the final ReLU (indices as in the reference's Sequential)."""
    layers: list[nn.Module] = []
    for cout in widths:
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        cin = cout
    return nn.Sequential(*layers[:-1])


class VGG(nn.Module):
    """See the module docstring."""

    def __init__(self, config: tuple[tuple[int, ...], ...], num_classes: int):
        super().__init__()
        cin = 3
        for k, widths in enumerate(config):
            self.add_module(f"block{k}", conv_block(cin, widths))
            self.add_module(f"relu{k}", nn.ReLU())
            cin = widths[-1]
        for k in range(4):
            self.add_module(f"pool{k}", nn.MaxPool2d(2, 2))
        self.pool4 = adaptive_pool()
        self.classifier = nn.Linear(512, num_classes)
        he_fan_out(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        x = self.pool0(self.relu0(self.block0(x)))
        x = self.pool1(self.relu1(self.block1(x)))
        x = self.pool2(self.relu2(self.block2(x)))
        x = self.relu3(self.block3(x))
        if h == 64:  # the reference's rule (64-pixel inputs get the fourth pooling)
            x = self.pool3(x)
        x = self.relu4(self.block4(x))
        return self.classifier(self.pool4(x))


# ``stage<k>.preact`` is block k's output, before relu<k> (the reference's ``f<k>_pre``)
POINTS = stage_points("relu0", ("relu1", "relu2", "relu3", "relu4"), "pool4",
                      ("block1", "block2", "block3", "block4"))

for _name, _config in CONFIGS.items():
    register(_name, lambda c, cfg=_config: VGG(cfg, c), POINTS,
             f"{_name} with batch norm for 32x32 inputs, RepDistiller {_name}_bn.")
