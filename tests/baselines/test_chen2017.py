"""Chen et al. 2017 terms against their formulas on fixed tensors; anchor assignment against RetinaNet's."""

import math

import pytest
import torch
import torch.nn.functional as F

from baselines.chen2017 import HINT_POINT, Chen2017, bounded_regression, soft_binary_ce
from bench.method import LossInputs
from bench.registry import TASKS
from tasks.detection.assign import BG_IOU, BOX_CODER, FG_IOU, assign
from tasks.detection.models import build_retinanet


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_soft_binary_ce_by_hand():
    s, t = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, -1.0]])
    expected = 0.0
    for zs, zt in ((0.0, 1.0), (2.0, -1.0)):
        ps, pt = sigmoid(zs), sigmoid(zt)
        expected -= pt * math.log(ps) + 1.5 * (1 - pt) * math.log(1 - ps)
    assert soft_binary_ce(s, t, 1.5).item() == pytest.approx(expected, rel=1e-6)


def test_background_weight_scales_only_the_background_side():
    s, t = torch.tensor([[0.3]]), torch.tensor([[-0.7]])
    pt = sigmoid(-0.7)
    diff = soft_binary_ce(s, t, 2.5) - soft_binary_ce(s, t, 1.0)
    assert diff.item() == pytest.approx(-1.5 * (1 - pt) * math.log(1 - sigmoid(0.3)), rel=1e-6)


def test_bounded_regression_worked_example():
    y = torch.zeros(3, 4)
    student = torch.tensor([[1.0, 0, 0, 0], [0.5, 0, 0, 0], [0.1, 0, 0, 0]])  # errors 1, 0.25, 0.01
    teacher = torch.tensor([[0.5, 0, 0, 0], [1.0, 0, 0, 0], [0.0, 0, 0, 0]])  # errors 0.25, 1, 0
    # row 0: student worse than teacher -> its error; row 1: better -> 0; row 2: worse -> its error
    torch.testing.assert_close(bounded_regression(student, teacher, y, 0.0), torch.tensor([1.0, 0.0, 0.01]))
    # a margin of 0.8 makes row 1 count too (0.25 + 0.8 > 1)
    torch.testing.assert_close(bounded_regression(student, teacher, y, 0.8), torch.tensor([1.0, 0.25, 0.01]))


def test_assignment_matches_retinanet():
    model = build_retinanet(6, 6)
    assert (model.proposal_matcher.high_threshold, model.proposal_matcher.low_threshold) == (FG_IOU, BG_IOU)
    assert model.proposal_matcher.allow_low_quality_matches
    assert model.box_coder.weights == BOX_CODER.weights
    anchors = torch.tensor([[0.0, 0, 10, 10], [0, 0, 20, 20], [30, 30, 40, 40]])
    boxes = torch.tensor([[0.0, 0, 10, 11]])
    fg, bg, targets = assign(anchors, boxes)
    assert fg.tolist() == [True, False, False] and bg.tolist() == [False, True, True]
    torch.testing.assert_close(targets[0], BOX_CODER.encode_single(boxes, anchors[:1])[0])
    fg, bg, _ = assign(anchors, torch.zeros(0, 4))
    assert not fg.any() and bg.all()


def test_loss_terms_are_the_weighted_published_terms():
    task = TASKS.get("detection")()
    n_anchors = len(task.anchors_all((64, 64)))
    g = torch.Generator().manual_seed(0)
    head = lambda: {"cls_logits": torch.randn(1, n_anchors, 7, generator=g),  # noqa: E731
                    "bbox_regression": torch.randn(1, n_anchors, 4, generator=g)}
    student = {"head.out": head(), HINT_POINT: torch.randn(1, 4, 8, 8, generator=g)}
    teacher = {"head.out": head(), HINT_POINT: torch.randn(1, 6, 8, 8, generator=g)}
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 24.0, 20.0]])}]
    task_losses = {"classification": torch.tensor(2.0), "bbox_regression": torch.tensor(0.5)}
    inputs = LossInputs(student, teacher, targets, task_losses, task, [torch.zeros(3, 64, 64)])
    method = Chen2017()
    extras = method.build_extras({HINT_POINT: student[HINT_POINT].shape}, {HINT_POINT: teacher[HINT_POINT].shape})
    terms = method.losses(inputs, extras)
    fg, _, y = assign(task.anchors_all((64, 64)), targets[0]["boxes"])
    soft = soft_binary_ce(student["head.out"]["cls_logits"][0], teacher["head.out"]["cls_logits"][0], 1.5)
    bound = bounded_regression(student["head.out"]["bbox_regression"][0][fg],
                               teacher["head.out"]["bbox_regression"][0][fg], y[fg], 0.0).mean()
    assert terms["classification"].item() == pytest.approx(1.0)
    assert terms["bbox_regression"].item() == pytest.approx(0.5)
    assert terms["soft_classification"].item() == pytest.approx(0.5 * soft.item() / fg.sum().item(), rel=1e-5)
    assert terms["bounded_regression"].item() == pytest.approx(0.5 * bound.item(), rel=1e-5)
    hint = F.mse_loss(extras(student[HINT_POINT]), teacher[HINT_POINT])
    assert terms["hint"].item() == pytest.approx(0.5 * hint.item(), rel=1e-5)
