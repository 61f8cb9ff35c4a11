"""SP, similarity-preserving KD: Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019.

With F (B x C x H x W) flattened to Q (B x CHW), the batch similarity matrix
G = row-L2-normalise(Q Q^T) (B x B), and

    L_sp = || G_t - G_s ||_F^2 / B^2,     L = CE + beta * L_sp

Defaults as in the CRD table (RepDistiller ``scripts/run_cifar_distill.sh``: ``--distill
similarity -r 1 -a 0 -b 3000``, the paper's gamma = 3000; mdistiller ``CFG.SP``): beta = 3000,
CE weight 1, no KD term. Feature point: the last stage's output, ``backbone.out`` (RepDistiller
``feat_s[-2]``, mdistiller ``feats[-1]``). Reference: RepDistiller ``distiller_zoo/SP.py``
("verified by original author").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.stage_features import with_term
from bench.method import LossInputs, Method
from bench.registry import METHODS


def similarity_matrix(feature: torch.Tensor) -> torch.Tensor:
    """G: the B x B Gram matrix of the flattened features, each row L2-normalised."""
    flat = feature.flatten(1)
    return F.normalize(flat @ flat.t())


def sp_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """|| G_t - G_s ||_F^2 / B^2."""
    batch = f_s.shape[0]
    return (similarity_matrix(f_t) - similarity_matrix(f_s)).pow(2).sum() / batch**2


@METHODS.register("sp")
class SimilarityPreserving(Method):
    """Similarity-preserving KD on the last stage's output; see the module docstring."""

    defaults = {"beta": 3000.0}
    ranges = {"beta": "[0, inf)"}
    student_features = ("backbone.out",)
    teacher_features = ("backbone.out",)
    tasks = ("classification",)
    default_tiers = ("smoke", "full")  # mini only when named, until published on both mini protocols

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        loss = sp_loss(inputs.student["backbone.out"], inputs.teacher["backbone.out"])
        return with_term(inputs, "sp", self.hparams["beta"] * loss)
