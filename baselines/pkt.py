"""PKT, probabilistic knowledge transfer: Passalis & Tefas, "Learning Deep Representations with
Probabilistic Knowledge Transfer", ECCV 2018.

Each model's embeddings define, per sample i, a conditional distribution over the
other samples of the batch from the cosine kernel scaled to [0, 1]:

    K_ij = (cos(e_i, e_j) + 1) / 2,   P_ij = K_ij / sum_j K_ij
    L_pkt = mean_ij P_t_ij * log((P_t_ij + eps) / (P_s_ij + eps)),   eps = 1e-7

(a mean over all B^2 entries, as the authors' code has it, not a per-row sum);
L = CE + beta * L_pkt. Defaults as in the CRD table (RepDistiller
``scripts/run_cifar_distill.sh``: ``--distill pkt -r 1 -a 0 -b 30000``; mdistiller
``CFG.PKT``): beta = 30000, CE weight 1, no KD term. Feature point: the pooled embedding,
``embedding`` (RepDistiller ``feat_s[-1]``). Reference: RepDistiller ``distiller_zoo/PKT.py``
(code from the author, passalis/probabilistic_kt), including its zeroing of NaN entries
after the normalisation (a zero embedding).
"""

from __future__ import annotations

import torch

from baselines.stage_features import with_term
from bench.method import LossInputs, Method
from bench.registry import METHODS


def cosine_conditionals(embedding: torch.Tensor, eps: float) -> torch.Tensor:
    """P: the row-normalised cosine kernel (cos + 1) / 2 of the batch's embeddings."""
    unit = embedding / (embedding.norm(dim=1, keepdim=True) + eps)
    unit = torch.where(torch.isnan(unit), torch.zeros_like(unit), unit)
    kernel = (unit @ unit.t() + 1.0) / 2.0
    return kernel / kernel.sum(dim=1, keepdim=True)


def pkt_loss(e_s: torch.Tensor, e_t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """mean_ij P_t log((P_t + eps) / (P_s + eps)) over the B x B entries."""
    p_s, p_t = cosine_conditionals(e_s, eps), cosine_conditionals(e_t, eps)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()


@METHODS.register("pkt")
class ProbabilisticKT(Method):
    """Probabilistic knowledge transfer on the pooled embedding; see the module docstring."""

    defaults = {"beta": 30000.0}
    ranges = {"beta": "[0, inf)"}
    student_features = ("embedding",)
    teacher_features = ("embedding",)
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        loss = pkt_loss(inputs.student["embedding"].flatten(1), inputs.teacher["embedding"].flatten(1))
        return with_term(inputs, "pkt", self.hparams["beta"] * loss)
