"""Hinton KD against its formula, computed by hand on fixed tensors."""

import math

import pytest
import torch

from baselines.kd import KD, soft_kl
from bench.errors import ConfigError
from bench.method import LossInputs

STUDENT = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
TEACHER = [[3.0, 2.0, 1.0], [0.0, 1.0, -1.0]]
TARGETS = [2, 0]
# Golden values, computed with the standard library only (see hand_kl below) for T=4, a=0.9:
GOLDEN_KD_TERM = 1.520522954912109  # a * T^2 * mean_batch sum_classes p_t log(p_t / p_s)
GOLDEN_CE_TERM = 0.10744586305507683  # (1 - a) * CE


def softmax(z, t):
    e = [math.exp(v / t) for v in z]
    return [v / sum(e) for v in e]


def hand_kl(s, t, temperature):
    ps, pt = softmax(s, temperature), softmax(t, temperature)
    return sum(q * math.log(q / p) for q, p in zip(pt, ps, strict=True))


def kd_terms(**hparams):
    student = torch.tensor(STUDENT, dtype=torch.float64)
    teacher = torch.tensor(TEACHER, dtype=torch.float64)
    targets = torch.tensor(TARGETS)
    ce = torch.nn.functional.cross_entropy(student, targets)
    inputs = LossInputs({"logits": student}, {"logits": teacher}, targets, {"ce": ce})
    return KD(**hparams).losses(inputs, None)


def test_kd_matches_golden_values():
    terms = kd_terms()
    assert terms["kd"].item() == pytest.approx(GOLDEN_KD_TERM, rel=1e-12)
    assert terms["ce"].item() == pytest.approx(GOLDEN_CE_TERM, rel=1e-12)


def test_kl_is_summed_over_classes_and_averaged_over_the_batch():
    t = 2.0
    expected = t * t * (hand_kl(STUDENT[0], TEACHER[0], t) + hand_kl(STUDENT[1], TEACHER[1], t)) / 2
    got = soft_kl(torch.tensor(STUDENT, dtype=torch.float64), torch.tensor(TEACHER, dtype=torch.float64), t)
    assert got.item() == pytest.approx(expected, rel=1e-12)
    # An element-wise mean would be 3x smaller here (3 classes).
    assert got.item() != pytest.approx(expected / 3, rel=1e-3)


def test_hyperparameters_weight_the_terms():
    terms = kd_terms(alpha=0.5, T=1.0)
    kl = sum(hand_kl(s, t, 1.0) for s, t in zip(STUDENT, TEACHER, strict=True)) / 2
    assert terms["kd"].item() == pytest.approx(0.5 * kl, rel=1e-12)
    assert terms["ce"].item() == pytest.approx(GOLDEN_CE_TERM / 0.1 * 0.5, rel=1e-12)


def test_identical_logits_give_zero_kd():
    z = torch.tensor(STUDENT)
    assert soft_kl(z, z.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-7)


def test_unknown_hyperparameter_is_named():
    with pytest.raises(ConfigError, match="temperature"):
        KD(temperature=3)
