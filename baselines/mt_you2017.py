"""Multi-teacher KD of You, Xu, Xu, Tao, "Learning from Multiple Teacher Networks", KDD 2017.

Output level: the student learns the teachers' averaged softened outputs

    p_bar = (1/K) * sum_k softmax(z_k / T)
    L_out = (1 - a) * CE(y, p_s) + a * T^2 * KL(p_bar || p_s^T)

Intermediate level, *relative dissimilarity*: for a triplet (anchor i, candidates
j and l) every teacher votes which candidate lies closer to the anchor in its
own representation; the majority fixes the positive and the negative, and the
student is asked to keep that order with a margin,

    L_tri = mean over triplets of max(0, d_s(i, pos) - d_s(i, neg) + delta)

so only the order of distances is transferred and no regressor is needed.
Total L = L_out + b * L_tri. Triplets are formed in the batch: anchor i with
candidates i+1 and i+2 (cyclically; the batch is shuffled every epoch). A tie
(possible with an even number of teachers) drops the triplet.

What could not be confirmed (the paper's text was not available here, and there
is no official code; ``reference/methods.md`` marks the details [R]): the form
of the output term (the paper writes a cross-entropy H(p_bar, p_s^T), which has
the same gradient as the KL used here, and its weight lambda), the margin delta,
the weight b, which layer the triplet loss reads, and the distance. Our choices:
a=0.9 and T=4 as for ``kd``; delta=0.2 and b=1.0; the pooled embedding before
the classifier; Euclidean distance between L2-normalised embeddings (so delta is
scale-free).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.kd import kl_map
from bench.method import LossInputs, Method
from bench.registry import METHODS

FEATURE = "embedding"


def averaged_soft_targets(teacher_logits: list[torch.Tensor], temperature: float) -> torch.Tensor:
    """p_bar = the mean over teachers of softmax(z_k / T) (classes on dim 1)."""
    return torch.stack([F.softmax(z / temperature, dim=1) for z in teacher_logits]).mean(dim=0)


def triplet_candidates(batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(anchor, first candidate, second candidate) indices: i, i+1, i+2 modulo the batch size."""
    anchor = torch.arange(batch_size)
    return anchor, (anchor + 1) % batch_size, (anchor + 2) % batch_size


def normalized_distance(embedding: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between the L2-normalised rows ``a`` and ``b`` of ``embedding``."""
    unit = F.normalize(embedding.flatten(1), dim=1)
    return (unit[a] - unit[b]).norm(dim=1)


def majority_vote(teacher_embeddings: list[torch.Tensor], anchor: torch.Tensor, first: torch.Tensor,
                  second: torch.Tensor) -> torch.Tensor:
    """+1 where most teachers find ``first`` closer to the anchor than ``second``, -1 where most find
    ``second`` closer, 0 on a tie."""
    votes = torch.stack([torch.sign(normalized_distance(e, anchor, second) - normalized_distance(e, anchor, first))
                         for e in teacher_embeddings])
    return torch.sign(votes.sum(dim=0))


def relative_dissimilarity_loss(student_embedding: torch.Tensor, teacher_embeddings: list[torch.Tensor],
                                margin: float) -> torch.Tensor:
    """The triplet loss above, averaged over the triplets the teachers did not tie on (0 if none)."""
    anchor, first, second = triplet_candidates(student_embedding.shape[0])
    vote = majority_vote(teacher_embeddings, anchor, first, second)
    positive = torch.where(vote > 0, first, second)
    negative = torch.where(vote > 0, second, first)
    hinge = F.relu(normalized_distance(student_embedding, anchor, positive)
                   - normalized_distance(student_embedding, anchor, negative) + margin)
    decided = (vote != 0).float()
    return (hinge * decided).sum() / decided.sum().clamp_min(1.0)


@METHODS.register("mt-you2017")
class MultiTeacherYou2017(Method):
    """Averaged soft targets plus the voted relative-dissimilarity triplet loss; see the module docstring."""

    defaults = {"T": 4.0, "alpha": 0.9, "beta": 1.0, "margin": 0.2}
    ranges = {"T": "(0, inf)", "alpha": "[0, 1]", "beta": "[0, inf)", "margin": "[0, inf)"}
    student_features = ("logits", FEATURE)
    teacher_features = ("logits", FEATURE)
    tasks = ("classification",)
    multi_teacher = True

    def losses(self, inputs: LossInputs, extras) -> dict[str, torch.Tensor]:
        h = self.hparams
        terms = {name: (1 - h["alpha"]) * value for name, value in inputs.task_losses.items()}
        p_bar = averaged_soft_targets([t["logits"] for t in inputs.teachers], h["T"])
        terms["kd"] = h["alpha"] * kl_map(inputs.student["logits"], p_bar.clamp_min(1e-12).log(), h["T"]).mean()
        terms["triplet"] = h["beta"] * relative_dissimilarity_loss(
            inputs.student[FEATURE], [t[FEATURE] for t in inputs.teachers], h["margin"])
        return terms
