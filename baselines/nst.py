"""NST, neuron selectivity transfer: Huang & Wang, "Like What You Like: Knowledge Distill via Neuron
Selectivity Transfer", arXiv 1707.01219, 2017.

Each channel's activation over the H x W positions is one sample of a distribution;
with f_i the L2-normalised (over positions) map of channel i, the squared MMD with the
polynomial kernel k(x, y) = (x^T y)^2 (d = 2, c = 0) between the two sets of channels:

    L_nst = mean_ij k(f_t_i, f_t_j) + mean_ij k(f_s_i, f_s_j) - 2 mean_ij k(f_s_i, f_t_j)

(means over the batch and the channel pairs), summed over the stages, the larger map
average-pooled to the smaller's size first; L = CE + beta * L_nst.

Defaults as in the CRD table (RepDistiller ``scripts/run_cifar_distill.sh``: ``--distill nst
-r 1 -a 0 -b 50``; mdistiller ``CFG.NST`` FEAT_WEIGHT 50): beta = 50, CE weight 1, no KD term.
Feature points: every stage output, ``stage1``..``stage<stages>`` (RepDistiller
``feat_s[1:-1]``, mdistiller ``feats[1:]``; not the last stage only). Reference: RepDistiller
``distiller_zoo/NST.py`` with ``full_loss = True`` (the teacher-teacher term is a constant).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.stage_features import StageMethod, match_spatial, with_term
from bench.method import LossInputs
from bench.registry import METHODS


def poly_kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean over the batch and channel pairs of (a_i^T b_j)^2; a, b are B x C x HW."""
    return (a @ b.transpose(1, 2)).pow(2).mean()


def nst_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """Squared MMD (polynomial kernel, d = 2) between the channels' normalised activation maps."""
    f_s, f_t = match_spatial(f_s, f_t)
    f_s = F.normalize(f_s.flatten(2), dim=2)
    f_t = F.normalize(f_t.flatten(2), dim=2)
    return poly_kernel_mean(f_t, f_t).detach() + poly_kernel_mean(f_s, f_s) - 2 * poly_kernel_mean(f_s, f_t)


@METHODS.register("nst")
class NeuronSelectivityTransfer(StageMethod):
    """Neuron selectivity transfer on every stage output; see the module docstring."""

    defaults = {"beta": 50.0, "stages": 3}
    ranges = {"beta": "[0, inf)", "stages": "[1, 16]"}

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        loss = sum(nst_loss(f_s, f_t) for f_s, f_t in self.stage_pairs(inputs))
        return with_term(inputs, "nst", self.hparams["beta"] * loss)
