"""Parameter-free pieces shared by the zoo's families."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class WindowAvgPool(nn.Module):
    """Average pooling with one window over the whole feature map, flattened: the ``embedding``
    point of the CIFAR ResNets, WRNs, ShuffleNets and MobileNetV2.

    The reference models pool with a fixed window sized for 32x32 inputs
    (``AvgPool2d(8)`` for the CIFAR ResNets and WRNs, ``avg_pool2d(4)`` for the
    ShuffleNets, ``AvgPool2d(2)`` for MobileNetV2). At 32x32 this is the same
    operation (bit-identical results); at other sizes it stays a global average
    where the reference's fixed window would not fit the classifier.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, x.shape[-2:]).flatten(1)


def adaptive_pool() -> nn.Sequential:
    """``AdaptiveAvgPool2d(1)`` then flatten: the pooling of the references that use it (VGG,
    the CIFAR ResNet-50, torchvision's ResNets)."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (Zhang et al. 2018, Sec. 3.1): view the channels as
    ``groups`` x ``C / groups``, transpose, and flatten back."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
