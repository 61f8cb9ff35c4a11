"""Worked examples for the multi-teacher methods: the majority vote and the triplet loss of
You et al. 2017, the averaged soft targets, CA-MKD's confidence weights, and mt-avg."""

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.ca_mkd import CAMKD, confidence_weights
from baselines.kd import soft_kl
from baselines.mt_avg import MultiTeacherAverage
from baselines.mt_you2017 import (
    MultiTeacherYou2017,
    averaged_soft_targets,
    majority_vote,
    relative_dissimilarity_loss,
    triplet_candidates,
)
from bench.method import LossInputs


def on_circle(*degrees: float) -> torch.Tensor:
    """Unit vectors at the given angles: their distances are 2 sin(angle difference / 2)."""
    radians = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([radians.cos(), radians.sin()], dim=1)


# three teachers, three samples; triplets are (0; 1, 2), (1; 2, 0), (2; 0, 1)
TEACHERS = [on_circle(0, 10, 90), on_circle(0, 20, 80), on_circle(0, 170, 90)]


def test_triplets_are_cyclic_in_the_batch():
    anchor, first, second = triplet_candidates(3)
    assert anchor.tolist() == [0, 1, 2] and first.tolist() == [1, 2, 0] and second.tolist() == [2, 0, 1]


def test_majority_vote_worked_example():
    # anchor 0: teachers A and B find sample 1 closer (10 and 20 degrees against 90 and 80), C finds
    # sample 2 closer (90 against 170) -> +1. Anchor 1: A and B find sample 0 closer -> -1.
    # Anchor 2: all three find sample 1 closer than sample 0 -> -1.
    vote = majority_vote(TEACHERS, *triplet_candidates(3))
    assert vote.tolist() == [1, -1, -1]


def test_majority_vote_tie_drops_the_triplet():
    vote = majority_vote(TEACHERS[:1] + TEACHERS[2:], *triplet_candidates(3))  # A and C disagree on anchor 0
    assert vote[0] == 0


def test_triplet_loss_worked_example():
    # student at 0, 60, 30 degrees; margin 0.2. Positives/negatives from the vote:
    # anchor 0: pos 1 (d = 2 sin 30 = 1), neg 2 (d = 2 sin 15) -> 1 - 0.517638 + 0.2
    # anchor 1: pos 0 (d = 1), neg 2 (d = 2 sin 15)            -> 1 - 0.517638 + 0.2
    # anchor 2: pos 1 (d = 2 sin 15), neg 0 (d = 2 sin 15)     -> 0.2
    loss = relative_dissimilarity_loss(on_circle(0, 60, 30), TEACHERS, margin=0.2)
    expected = (2 * (1.0 - 2 * math.sin(math.radians(15)) + 0.2) + 0.2) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(0.521575, abs=1e-6)


def test_triplet_loss_is_zero_when_the_student_keeps_the_order_with_margin():
    # every decided order holds with room: anchor 2 is 0.845 from sample 1 and 1.0 from sample 0
    assert relative_dissimilarity_loss(on_circle(0, 10, 60), TEACHERS, margin=0.05).item() == 0.0


def test_averaged_soft_targets_are_the_mean_of_the_teacher_distributions():
    logits = [torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3), 0.0]]), torch.tensor([[0.0, math.log(3)]])]
    # softmax: (0.5, 0.5), (0.75, 0.25), (0.25, 0.75) -> mean (0.5, 0.5)
    assert torch.allclose(averaged_soft_targets(logits, 1.0), torch.tensor([[0.5, 0.5]]))
    random = [torch.randn(4, 5) for _ in range(3)]
    mean = sum(F.softmax(z / 4.0, dim=1) for z in random) / 3
    assert torch.allclose(averaged_soft_targets(random, 4.0), mean)


def test_you2017_output_term_is_kl_to_the_averaged_targets():
    torch.manual_seed(0)
    student, teachers = torch.randn(4, 5), [torch.randn(4, 5) for _ in range(3)]
    feats = [torch.randn(4, 8) for _ in range(3)]
    method = MultiTeacherYou2017()
    inputs = LossInputs({"logits": student, "embedding": torch.randn(4, 8)}, {}, None,
                        {"ce": torch.tensor(2.0)}, None, None,
                        [{"logits": t, "embedding": f} for t, f in zip(teachers, feats, strict=True)])
    terms = method.losses(inputs, None)
    p_bar = averaged_soft_targets(teachers, 4.0)
    expected = 16 * (p_bar * (p_bar.log() - F.log_softmax(student / 4.0, dim=1))).sum(1).mean()
    assert terms["kd"].item() == pytest.approx(0.9 * expected.item(), rel=1e-5)
    assert terms["ce"].item() == pytest.approx(0.1 * 2.0)


def two_class_logits_with_ce(ce: float) -> torch.Tensor:
    """Logits (0, x) whose cross-entropy against class 0 is ``ce``: log(1 + e^x) = ce."""
    return torch.tensor([[0.0, math.log(math.exp(ce) - 1)]], dtype=torch.float64)


def test_ca_mkd_weights_worked_example():
    # CE 0.1, 1.0, 2.0 -> softmax over teachers (0.098566, 0.242433, 0.659001)
    # -> w = (1 - s) / (K - 1) = (0.450717, 0.378784, 0.170500): the most confident teacher weighs most
    logits = [two_class_logits_with_ce(c) for c in (0.1, 1.0, 2.0)]
    weights = confidence_weights(logits, torch.tensor([0]))
    assert weights[:, 0].tolist() == pytest.approx([0.450717, 0.378784, 0.170500], abs=1e-6)
    assert weights.sum().item() == pytest.approx(1.0)


def test_ca_mkd_weights_are_equal_on_ignored_pixels():
    logits = [torch.randn(1, 3, 2, 2) for _ in range(3)]
    targets = torch.tensor([[[0, 255], [1, 2]]])
    weights = confidence_weights(logits, targets, ignore_index=255)
    assert weights.shape == (3, 1, 2, 2)
    assert torch.allclose(weights[:, 0, 0, 1], torch.full((3,), 1 / 3))
    assert torch.allclose(weights.sum(dim=0), torch.ones(1, 2, 2))


def test_ca_mkd_kd_term_with_equal_weights_is_mt_avg_over_k():
    # equal CE for every teacher -> w = 1/K, and the authors' 1/K factor on top
    torch.manual_seed(1)
    student = torch.randn(2, 4)
    teacher = torch.randn(2, 4)
    method = CAMKD(beta=0.0)
    extras = method.build_extras({"embedding": torch.Size([2, 6])}, [{"embedding": torch.Size([2, 6])}] * 3)
    inputs = LossInputs({"logits": student, "embedding": torch.randn(2, 6)}, {}, torch.tensor([0, 1]), {}, None,
                        None, [{"logits": teacher, "embedding": torch.randn(2, 6)}] * 3)
    terms = method.losses(inputs, extras)
    assert terms["kd"].item() == pytest.approx(soft_kl(student, teacher, 4.0).item() / 3, rel=1e-5)


def test_mt_avg_is_the_mean_of_per_teacher_kd_terms():
    torch.manual_seed(2)
    student, teachers = torch.randn(3, 5), [torch.randn(3, 5) for _ in range(3)]
    inputs = LossInputs({"logits": student}, {}, None, {"ce": torch.tensor(1.0)}, None, None,
                        [{"logits": t} for t in teachers])
    terms = MultiTeacherAverage().losses(inputs, None)
    expected = sum(soft_kl(student, t, 4.0) for t in teachers) / 3
    assert terms["kd"].item() == pytest.approx(0.9 * expected.item(), rel=1e-6)
