"""AT, attention transfer: Zagoruyko & Komodakis, "Paying More Attention to Attention: Improving the
Performance of Convolutional Neural Networks via Attention Transfer", ICLR 2017.

The spatial attention map of a feature F (B x C x H x W) is the channel mean of |F|^p,
flattened and L2-normalised per sample:

    Q(F) = vec(mean_c F_c^p) / || vec(mean_c F_c^p) ||_2,   p = 2
    L_at = sum_stages mean_{b,hw} (Q(F_s) - Q(F_t))^2,       L = CE + beta * L_at

with the larger map average-pooled to the smaller's size first. Defaults as in the
CRD table (RepDistiller ``scripts/run_cifar_distill.sh``: ``--distill attention -r 1 -a 0
-b 1000``; mdistiller ``CFG.AT``: P=2, FEAT_WEIGHT 1000): beta = 1000, p = 2, CE weight 1,
no KD term. Feature points: every stage output, ``stage1``..``stage<stages>``
(RepDistiller ``feat_s[1:-1]``).

Reference: RepDistiller ``distiller_zoo/AT.py`` (``F.pow(p)``, not ``|F|^p``: the same for
p = 2; for odd p on post-ReLU features too). The paper's own code
(szagoruyko/attention-transfer ``utils.at_loss``) is the same map and mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.stage_features import StageMethod, match_spatial, with_term
from bench.method import LossInputs
from bench.registry import METHODS


def attention_map(feature: torch.Tensor, p: float) -> torch.Tensor:
    """Q(F): the per-sample L2-normalised, flattened channel mean of F^p."""
    return F.normalize(feature.pow(p).mean(1).flatten(1))


def at_loss(f_s: torch.Tensor, f_t: torch.Tensor, p: float) -> torch.Tensor:
    """mean (Q(F_s) - Q(F_t))^2 over the batch and the positions, at the smaller spatial size."""
    f_s, f_t = match_spatial(f_s, f_t)
    return (attention_map(f_s, p) - attention_map(f_t, p)).pow(2).mean()


@METHODS.register("at")
class AttentionTransfer(StageMethod):
    """Attention transfer on every stage output; see the module docstring."""

    defaults = {"beta": 1000.0, "p": 2.0, "stages": 3}
    ranges = {"beta": "[0, inf)", "p": "(0, inf)", "stages": "[1, 16]"}

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        p = self.hparams["p"]
        loss = sum(at_loss(f_s, f_t, p) for f_s, f_t in self.stage_pairs(inputs))
        return with_term(inputs, "at", self.hparams["beta"] * loss)
