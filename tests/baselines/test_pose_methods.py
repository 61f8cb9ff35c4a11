"""The pose methods against their formulas on fixed tensors."""

import pytest
import torch
import torch.nn.functional as F

from baselines.fpd import FPD
from baselines.hint import Hint
from baselines.integral_kd import IntegralKD, keypoint_structure
from bench.method import LossInputs


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    student = {"logits": torch.rand(2, 3, 4, 4, generator=g), "backbone.out": torch.randn(2, 5, 2, 2, generator=g),
               "head.out": torch.randn(2, 4, 4, 4, generator=g)}
    teacher = {"logits": torch.rand(2, 3, 4, 4, generator=g), "backbone.out": torch.randn(2, 7, 2, 2, generator=g),
               "head.out": torch.randn(2, 6, 4, 4, generator=g)}
    weights = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    return LossInputs(student, teacher, {"weights": weights}, {"heatmap": torch.tensor(0.8)})


def test_fpd_mixes_ground_truth_and_teacher_heatmaps():
    x = inputs()
    terms = FPD().losses(x, None)
    w = x.targets["weights"][:, :, None, None]
    by_hand = 0.5 * ((w * (x.student["logits"] - x.teacher["logits"])) ** 2).mean()
    assert terms["heatmap"].item() == pytest.approx(0.5 * 0.8)
    torch.testing.assert_close(terms["fpd"], 0.5 * by_hand)


def test_hint_is_the_adapted_mse():
    x = inputs()
    method = Hint()
    adapter = method.build_extras({k: v.shape for k, v in x.student.items()},
                                  {k: v.shape for k, v in x.teacher.items()})
    terms = method.losses(x, adapter)
    torch.testing.assert_close(terms["hint"], F.mse_loss(adapter(x.student["backbone.out"]), x.teacher["backbone.out"]))


def test_keypoint_structure_by_hand():
    maps = torch.zeros(1, 2, 2, 2)
    maps[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    maps[0, 1] = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    # cosine of (1,0,0,0) and (1,1,0,0) is 1/sqrt(2)
    torch.testing.assert_close(keypoint_structure(maps)[0], torch.tensor([[1.0, 2**-0.5], [2**-0.5, 1.0]]))


def test_integral_kd_terms():
    x = inputs()
    method = IntegralKD()
    adapter = method.build_extras({k: v.shape for k, v in x.student.items()},
                                  {k: v.shape for k, v in x.teacher.items()})
    terms = method.losses(x, adapter)
    assert set(terms) == {"heatmap", "logit", "feature", "structure"}
    torch.testing.assert_close(terms["structure"], F.mse_loss(keypoint_structure(x.student["logits"]),
                                                             keypoint_structure(x.teacher["logits"])))
    torch.testing.assert_close(terms["feature"], F.mse_loss(adapter(x.student["head.out"]), x.teacher["head.out"]))
