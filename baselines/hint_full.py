"""Full-map hint: FGFI's imitation over the whole feature map, the ablation of Wang et al.
(CVPR 2019) that shows the fine-grained mask matters.

    L_hint = sum_{i,j,c} (f_adap(s)_ijc - t_ijc)^2 / (2 H W B),   L = L_det + lambda * L_hint

Everything else (levels, adapters, lambda = 0.01) is FGFI's (:mod:`baselines.fgfi`).
"""

from __future__ import annotations

import torch

from baselines.fgfi import FGFI
from bench.method import LossInputs
from bench.registry import METHODS


@METHODS.register("hint-full")
class HintFull(FGFI):
    """FGFI with the imitation mask set to the whole feature map."""

    defaults = {"weight": 0.01, "adapter_relu": False}

    def mask(self, inputs: LossInputs, level: str, feature: torch.Tensor) -> torch.Tensor:
        return torch.ones(feature.shape[0], *feature.shape[-2:], device=feature.device)
