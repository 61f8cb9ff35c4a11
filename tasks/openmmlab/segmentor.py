"""An mmseg encoder-decoder (PSPNet, DeepLabV3, ...) behind KDBench's segmentation task.

:class:`MMSegSegmentor` takes the task's normalised images (``(x/255 - 0.5) / 0.25``) and returns
logits at the input's size, as the torch-native ``pspnet_<w>`` does, so the task's CE loss, its mIoU
and every segmentation method use it unchanged. Inside, the input is renormalised to the mean and
std the model expects (``kdbench_normalization`` of the config, else its ``data_preprocessor``'s),
the backbone and decode head run as mmseg runs them, and the low-resolution scores are resized
bilinearly (with the decode head's ``align_corners``).

Feature points are plain module outputs: ``logits.low`` the decode head's classifier
(``conv_seg``, the scores at the head's stride), ``psp.out`` and ``embedding`` its bottleneck (the
fused context feature the classifier reads: PSPNet's PSP feature, DeepLabV3's post-ASPP conv),
``backbone.out`` the backbone's last stage. An auxiliary head (mmseg's FCNHead on stage 3) adds the
task's CE on its upsampled scores, weighted by its ``loss_decode.loss_weight``, as the term
``ce_aux`` (:meth:`MMSegSegmentor.auxiliary_logits`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError
from tasks.openmmlab.models import accept_openmmlab_keys

#: the segmentation task's own normalisation, on the 0-255 scale (tasks.segmentation.task.prepare)
TASK_MEAN, TASK_STD = 127.5, 63.75


def last_stage(model_cfg: dict) -> str:
    backbone = model_cfg.get("backbone", {})
    stages = backbone.get("num_stages", 4)
    return f"core.backbone.layer{stages}"


def feature_points(model_cfg: dict) -> dict[str, str]:
    """Feature point -> module path of an mmseg encoder-decoder built from ``model_cfg``."""
    if not isinstance(model_cfg.get("decode_head"), dict):
        raise ConfigError(f"model {model_cfg.get('type')!r}: KDBench needs an encoder-decoder with one "
                          "model.decode_head")
    return {"logits.low": "core.decode_head.conv_seg", "psp.out": "core.decode_head.bottleneck",
            "embedding": "core.decode_head.bottleneck", "backbone.out": last_stage(model_cfg)}


def normalization(settings: dict[str, Any]) -> tuple[list[float], list[float]]:
    found = settings.get("normalization") or settings.get("data_preprocessor") or {}
    mean = found.get("mean", (123.675, 116.28, 103.53))
    std = found.get("std", (58.395, 57.12, 57.375))
    return [float(v) for v in mean], [float(v) for v in std]


class MMSegSegmentor(nn.Module):
    """An mmseg encoder-decoder (``core``) returning full-size logits; see the module docstring."""

    def __init__(self, core: nn.Module, settings: dict[str, Any]):
        super().__init__()
        self.core = core
        self._register_load_state_dict_pre_hook(accept_openmmlab_keys, with_module=True)
        mean, std = normalization(settings)
        # x_task = (u - 127.5) / 63.75  ->  x_model = (u - mean) / std = x_task * scale + shift
        self.register_buffer("scale", torch.tensor([TASK_STD / s for s in std]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor([(TASK_MEAN - m) / s for m, s in zip(mean, std, strict=True)]
                                                   ).view(1, -1, 1, 1), persistent=False)
        self.align_corners = bool(getattr(core.decode_head, "align_corners", False))
        self._auxiliary: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.core.extract_feat(x * self.scale + self.shift)
        logits = self.core.decode_head(features)
        self._auxiliary = []
        if self.training and getattr(self.core, "with_auxiliary_head", False):
            heads = self.core.auxiliary_head
            for head in heads if isinstance(heads, nn.ModuleList) else [heads]:
                weight = float(getattr(head.loss_decode, "loss_weight", 1.0))
                self._auxiliary.append((self.upsample(head(features), x), weight))
        return self.upsample(logits, x)

    def upsample(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(logits, x.shape[-2:], mode="bilinear", align_corners=self.align_corners)

    def auxiliary_logits(self) -> list[tuple[torch.Tensor, float]]:
        """The auxiliary heads' upsampled logits and loss weights of the last training forward pass."""
        return list(self._auxiliary)
