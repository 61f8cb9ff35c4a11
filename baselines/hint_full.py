"""Full-map hint: FGFI's imitation over the whole feature map, the ablation of Wang et al.
(CVPR 2019) that shows the fine-grained mask matters.

    L_hint = sum_{i,j,c} (f_adap(s)_ijc - t_ijc)^2 / (2 H W B),   L = L_det + lambda * L_hint

Everything else (levels, adapters, lambda = 0.01) is FGFI's (:mod:`baselines.fgfi`).
"""

from __future__ import annotations

import torch

from baselines.fgfi import FGFI, LEVELS
from bench.method import LossInputs
from bench.registry import METHODS


@METHODS.register("hint-full")
class HintFull(FGFI):
    """FGFI with the imitation mask set to the whole feature map."""

    defaults = {"weight": 0.01, "adapter_relu": False}

    def masks(self, inputs: LossInputs, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {level: torch.ones(f.shape[0], *f.shape[-2:], device=f.device) for level, f in features.items()
                if level in LEVELS}
