"""Connectors of the feature methods that map a student feature onto a teacher's (FitNet, AB, FT,
FSP), as RepDistiller builds them (HobbitLong/RepDistiller ``models/util.py``: ``ConvReg``,
``Paraphraser``, ``Translator``), and the 1x1 channel adapters used where a method needs equal
channel counts that the two models do not have."""

from __future__ import annotations

import torch
from torch import nn


class ConvReg(nn.Module):
    """RepDistiller's convolutional regressor: a conv from the student's map to the teacher's
    shape (3x3 stride 2 if the student's map is twice as large, 4x4 stride-2 transposed conv if half
    as large, else a valid conv of kernel 1 + the size difference), then BN and (optionally) ReLU."""

    def __init__(self, s_shape: torch.Size, t_shape: torch.Size, use_relu: bool = True):
        super().__init__()
        _, s_c, s_h, s_w = s_shape
        _, t_c, t_h, t_w = t_shape
        if s_h == 2 * t_h:
            self.conv = nn.Conv2d(s_c, t_c, kernel_size=3, stride=2, padding=1)
        elif s_h * 2 == t_h:
            self.conv = nn.ConvTranspose2d(s_c, t_c, kernel_size=4, stride=2, padding=1)
        elif s_h >= t_h:
            self.conv = nn.Conv2d(s_c, t_c, kernel_size=(1 + s_h - t_h, 1 + s_w - t_w))
        else:
            raise ValueError(f"ConvReg: student map {s_h}x{s_w} is smaller than the teacher's {t_h}x{t_w} "
                             "and not half its size")
        self.bn = nn.BatchNorm2d(t_c)
        self.relu = nn.ReLU(inplace=True) if use_relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _conv_block(cin: int, cout: int, use_bn: bool, transposed: bool = False) -> list[nn.Module]:
    conv = (nn.ConvTranspose2d if transposed else nn.Conv2d)(cin, cout, 3, 1, 1)
    return [conv, nn.BatchNorm2d(cout) if use_bn else nn.Sequential(), nn.LeakyReLU(0.1, inplace=True)]


class Paraphraser(nn.Module):
    """Factor transfer's paraphraser (Kim et al. 2018): a 3-conv encoder from the teacher's C
    channels to ``rate * C`` factor channels and a 3-transposed-conv decoder back; LeakyReLU 0.1,
    no BN (RepDistiller's ``use_bn=False``)."""

    def __init__(self, t_shape: torch.Size, rate: float = 0.5, use_bn: bool = False):
        super().__init__()
        c, k = t_shape[1], int(t_shape[1] * rate)
        self.encoder = nn.Sequential(*_conv_block(c, c, use_bn), *_conv_block(c, k, use_bn),
                                     *_conv_block(k, k, use_bn))
        self.decoder = nn.Sequential(*_conv_block(k, k, use_bn, True), *_conv_block(k, c, use_bn, True),
                                     *_conv_block(c, c, use_bn, True))

    def forward(self, f_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        factor = self.encoder(f_t)
        return factor, self.decoder(factor)


class Translator(nn.Module):
    """Factor transfer's translator: the paraphraser's encoder shape from the student's channels to
    the teacher's factor channels, with BN (RepDistiller's ``use_bn=True``)."""

    def __init__(self, s_shape: torch.Size, t_shape: torch.Size, rate: float = 0.5, use_bn: bool = True):
        super().__init__()
        c, k = s_shape[1], int(t_shape[1] * rate)
        self.encoder = nn.Sequential(*_conv_block(c, c, use_bn), *_conv_block(c, k, use_bn),
                                     *_conv_block(k, k, use_bn))

    def forward(self, f_s: torch.Tensor) -> torch.Tensor:
        return self.encoder(f_s)


def channel_adapters(points: tuple[str, ...], student_shapes, teacher_shapes) -> nn.ModuleDict | None:
    """A 1x1 conv (no bias) from the student's to the teacher's channels at each point where they
    differ; None where every point already matches."""
    adapters = {p: nn.Conv2d(student_shapes[p][1], teacher_shapes[p][1], 1, bias=False)
                for p in points if student_shapes[p][1] != teacher_shapes[p][1]}
    return nn.ModuleDict(adapters) if adapters else None


def adapt(adapters: nn.ModuleDict | None, point: str, feature: torch.Tensor) -> torch.Tensor:
    """``feature`` through the point's adapter, or unchanged where it has none."""
    return adapters[point](feature) if adapters is not None and point in adapters else feature
