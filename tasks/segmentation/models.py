"""PSPNet-style segmentors with a small backbone, built from scratch (no pretrained weights).

``pspnet_<w>``: a backbone of stride 8 (three stride-2 stages at widths w, 2w,
4w, then a dilated stage at 8w), the pyramid pooling module of Zhao et al.
(CVPR 2017: average pooling into 1, 2, 3 and 6 bins, 1x1 reductions, upsampled
and concatenated with the input), a 3x3 fusion conv (the "PSP feature", 4w
channels) and a 1x1 classifier at stride 8; ``forward`` returns the logits
bilinearly upsampled to the input size.

``deeplabv3_<w>``: the same backbone with torchvision's DeepLabV3 head
(ASPP at dilations 12, 24, 36 scaled to the stride-8 map as 2, 4, 6, a 3x3
conv and a 1x1 classifier).

Feature points: ``psp.out`` the fused context feature before the classifier
(PSPNet's PSP feature, SKD's pair-wise point; DeepLabV3's post-ASPP conv),
``logits.low`` the stride-8 class scores (SKD's pixel-wise and holistic
point), ``backbone.out`` the dilated stage's output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torchvision.models.segmentation.deeplabv3 import ASPP, DeepLabHead

from bench.registry import register_widths

# "embedding" is the per-pixel representation the classifier reads (the same module as "psp.out").
FEATURE_POINTS = {"psp.out": "fuse", "logits.low": "classifier", "backbone.out": "layer4", "embedding": "fuse"}
DEEPLAB_FEATURE_POINTS = {"psp.out": "head.3", "logits.low": "head.4", "backbone.out": "layer4",
                          "embedding": "head.3"}


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PyramidPooling(nn.Module):
    """Average-pool into ``bins`` x ``bins`` cells, reduce, upsample, concatenate with the input."""

    def __init__(self, channels: int, bins: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        reduced = max(1, channels // len(bins))
        self.bins = bins
        self.stages = nn.ModuleList(conv_bn_relu(channels, reduced, kernel=1) for _ in bins)
        self.out_channels = channels + reduced * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(F.adaptive_avg_pool2d(x, b)), size, mode="bilinear", align_corners=False)
                  for b, stage in zip(self.bins, self.stages, strict=True)]
        return torch.cat([x, *pooled], dim=1)


class DilatedBackbone(nn.Module):
    """Three stride-2 stages (w, 2w, 4w) and a dilated stage (8w): output stride 8."""

    def __init__(self, width: int):
        super().__init__()
        self.out_channels = 8 * width
        self.layer1 = nn.Sequential(conv_bn_relu(3, width, stride=2), conv_bn_relu(width, width))
        self.layer2 = nn.Sequential(conv_bn_relu(width, 2 * width, stride=2), conv_bn_relu(2 * width, 2 * width))
        self.layer3 = nn.Sequential(conv_bn_relu(2 * width, 4 * width, stride=2), conv_bn_relu(4 * width, 4 * width))
        self.layer4 = nn.Sequential(conv_bn_relu(4 * width, 8 * width, dilation=2),
                                    conv_bn_relu(8 * width, 8 * width, dilation=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class PSPNet(DilatedBackbone):
    """See the module docstring."""

    def __init__(self, width: int, num_classes: int):
        super().__init__(width)
        self.ppm = PyramidPooling(8 * width)
        self.fuse = conv_bn_relu(self.ppm.out_channels, 4 * width)
        self.classifier = nn.Conv2d(4 * width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.fuse(self.ppm(super().forward(x))))
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=False)


class DeepLabV3(DilatedBackbone):
    """See the module docstring."""

    def __init__(self, width: int, num_classes: int):
        super().__init__(width)
        self.head = DeepLabHead(8 * width, num_classes)
        self.head[0] = ASPP(8 * width, (2, 4, 6), out_channels=4 * width)  # rates for a small map
        self.head[1] = nn.Conv2d(4 * width, 4 * width, 3, padding=1, bias=False)
        self.head[2] = nn.BatchNorm2d(4 * width)
        self.head[4] = nn.Conv2d(4 * width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(super().forward(x))
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=False)


register_widths("pspnet_", lambda width, num_classes: PSPNet(width, num_classes), (4, 6, 8, 12, 16, 24, 32),
                "PSPNet with a stride-8 backbone of base width {width}.")
register_widths("deeplabv3_", lambda width, num_classes: DeepLabV3(width, num_classes), (4, 6, 8, 12, 16, 24, 32),
                "DeepLabV3 with a stride-8 backbone of base width {width}.")
