"""torchvision's ImageNet ResNet-18 and ResNet-34 (He et al. 2016), built without weights.

``torchvision_resnet18`` / ``torchvision_resnet34`` are
``torchvision.models.resnet18/34(weights=None, num_classes=N)`` (1000 classes by
default), so torchvision's checkpoint files (``resnet34-b627a593.pth``, bare
state dicts) load unchanged. The only change is that ``avgpool`` also flattens
(torchvision flattens right after it in ``forward``), so the ``embedding``
point is the pooled vector; it holds no weights.
"""

from __future__ import annotations

import torchvision
from torch import nn

from tasks.classification.cifar_zoo.layers import adaptive_pool
from tasks.classification.cifar_zoo.registration import register, stage_points


def build(depth: int, num_classes: int) -> nn.Module:
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
    model.avgpool = adaptive_pool()
    return model


POINTS = stage_points("maxpool", ("layer1", "layer2", "layer3", "layer4"), "avgpool")

for _depth in (18, 34):
    register(f"torchvision_resnet{_depth}", lambda c, d=_depth: build(d, c), POINTS,
             f"torchvision.models.resnet{_depth}(weights=None): the ImageNet ResNet-{_depth}.",
             default_classes=1000)
