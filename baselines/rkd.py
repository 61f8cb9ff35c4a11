"""RKD, relational knowledge distillation: Park, Kim, Lu, Cho, "Relational Knowledge Distillation",
CVPR 2019, with both its distance-wise and angle-wise terms.

On the batch's embeddings e (B x D):

    psi_D(i, j) = ||e_i - e_j||_2 / mu,   mu = mean of the non-zero pairwise distances
    psi_A(i, j, k) = < (e_i - e_j) / ||e_i - e_j||, (e_k - e_j) / ||e_k - e_j|| >
    L_rkd = w_d * SmoothL1(psi_D^s, psi_D^t) + w_a * SmoothL1(psi_A^s, psi_A^t)

(SmoothL1 with beta 1, averaged over all B^2 pairs and B^3 triples, the diagonal included
as zeros); L = CE + beta * L_rkd. Defaults: w_d = 25, w_a = 50 (the paper's classification
setting, RepDistiller ``RKDLoss(w_d=25, w_a=50)``, mdistiller ``CFG.RKD``) and beta = 1 (CRD
table, RepDistiller ``scripts/run_cifar_distill.sh``: ``--distill rkd -r 1 -a 0 -b 1``), CE
weight 1, no KD term. Feature point: the pooled embedding, ``embedding`` (RepDistiller
``feat_s[-1]``). Reference: RepDistiller ``distiller_zoo/RKD.py`` (the authors' lenscloth/RKD
``metric/loss.py`` in the same form); squared distances are clamped at 1e-12 before the root.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.stage_features import with_term
from bench.method import LossInputs, Method
from bench.registry import METHODS


def pairwise_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """B x B Euclidean distances (squared ones clamped at ``eps`` before the root), zero diagonal."""
    squared = e.pow(2).sum(dim=1)
    dist = (squared.unsqueeze(1) + squared.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps).sqrt()
    return dist * (1 - torch.eye(len(e), dtype=dist.dtype, device=dist.device))


def normalised_distances(e: torch.Tensor) -> torch.Tensor:
    """psi_D: the pairwise distances divided by the mean of the non-zero ones."""
    dist = pairwise_distances(e)
    return dist / dist[dist > 0].mean()


def angles(e: torch.Tensor) -> torch.Tensor:
    """psi_A, flattened: cosines of the angles at every vertex j of every triple (i, j, k)."""
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
    return torch.bmm(diff, diff.transpose(1, 2)).flatten()


def rkd_loss(e_s: torch.Tensor, e_t: torch.Tensor, distance_weight: float, angle_weight: float) -> torch.Tensor:
    """w_d * distance term + w_a * angle term, the teacher's relations as constants."""
    e_s, e_t = e_s.flatten(1), e_t.flatten(1).detach()
    loss = e_s.new_zeros(())
    if distance_weight:
        loss = loss + distance_weight * F.smooth_l1_loss(normalised_distances(e_s), normalised_distances(e_t))
    if angle_weight:
        loss = loss + angle_weight * F.smooth_l1_loss(angles(e_s), angles(e_t))
    return loss


@METHODS.register("rkd")
class RelationalKD(Method):
    """RKD distance + angle on the pooled embedding; see the module docstring."""

    defaults = {"beta": 1.0, "distance_weight": 25.0, "angle_weight": 50.0}
    ranges = {"beta": "[0, inf)", "distance_weight": "[0, inf)", "angle_weight": "[0, inf)"}
    student_features = ("embedding",)
    teacher_features = ("embedding",)
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        loss = rkd_loss(inputs.student["embedding"], inputs.teacher["embedding"],
                        self.hparams["distance_weight"], self.hparams["angle_weight"])
        return with_term(inputs, "rkd", self.hparams["beta"] * loss)
