"""Top-down heatmap regressors in the SimpleBaseline style (Xiao, Wu, Wei, ECCV 2018).

``pose_<timm backbone>``: a timm backbone built without pretrained weights
(``features_only``, its stride-16 stage), two 4x4 stride-2 transposed
convolutions with BatchNorm and ReLU (the paper uses three at 256 channels; two
narrower ones fit the CPU budget and give stride-4 heatmaps), and a 1x1 conv to
one heatmap per keypoint.

Feature points: ``backbone.out`` the stride-16 backbone feature, ``head.out``
the last deconvolution's output; ``logits`` is the model output (the heatmaps).
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from bench.registry import MODELS

FEATURE_POINTS = {"backbone.out": "neck", "head.out": "head"}
#: registered name -> (timm backbone, head channels)
BACKBONES = {
    "pose_mobilenetv3_large_100": ("mobilenetv3_large_100", 64),
    "pose_mobilenetv3_small_100": ("mobilenetv3_small_100", 32),
    "pose_mobilenetv3_small_050": ("mobilenetv3_small_050", 32),
    "pose_resnet18": ("resnet18", 128),
}


class SimpleBaseline(nn.Module):
    """See the module docstring."""

    def __init__(self, backbone: str, num_keypoints: int, head_channels: int, deconvs: int = 2):
        super().__init__()
        self.backbone = timm.create_model(backbone, pretrained=False, features_only=True, out_indices=(3,))
        self.neck = nn.Identity()  # a named point for the backbone's output
        cin, layers = self.backbone.feature_info.channels()[-1], []
        for _ in range(deconvs):
            layers += [nn.ConvTranspose2d(cin, head_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(head_channels),
                       nn.ReLU(inplace=True)]
            cin = head_channels
        self.head = nn.Sequential(*layers)
        self.final = nn.Conv2d(head_channels, num_keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.head(self.neck(self.backbone(x)[-1])))


for _name, (_backbone, _channels) in BACKBONES.items():
    def _build(num_classes: int, backbone: str = _backbone, channels: int = _channels) -> SimpleBaseline:
        return SimpleBaseline(backbone, num_classes, channels)

    _build.__doc__ = f"SimpleBaseline over timm's {_backbone} (head {_channels} channels)."
    MODELS.register(_name)(_build)
