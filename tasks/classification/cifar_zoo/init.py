"""The weight initialisation the reference CIFAR models use (HobbitLong/RepDistiller ``models/*.py``).

Convolutions: normal with std sqrt(2 / (k*k*out_channels)), i.e. He (Kaiming)
initialisation in fan-out mode (He et al. 2015), bias zero; batch norms: weight 1,
bias 0. Linear layers differ per family, so the caller says what to do with them:
keep PyTorch's default, or draw the weight from N(0, ``linear_std``) with zero
bias (VGG, MobileNetV2), or only zero the bias (WRN).
"""

from __future__ import annotations

from torch import nn


def he_fan_out(model: nn.Module, linear_std: float | None = None, zero_linear_bias: bool = False) -> None:
    """Initialise ``model`` in place as described in the module docstring."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            if linear_std is not None or zero_linear_bias:
                nn.init.zeros_(m.bias)
