"""FGFI and the full-map hint against their formulas; the task's anchors against torchvision's."""

import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from baselines.fgfi import FGFI, LEVELS
from baselines.fgfi_per_level import FGFIPerLevel
from baselines.hint_full import HintFull
from bench.method import LossInputs
from bench.registry import TASKS
from tasks.detection.imitation import imitation_loss, imitation_mask, imitation_masks
from tasks.detection.models import anchor_generator

SIZES = {"neck.p2": 16, "neck.p3": 8, "neck.p4": 4}  # feature sizes of a 64x64 image


def make_inputs(seed=0, channels_s=4, channels_t=6):
    g = torch.Generator().manual_seed(seed)
    student = {lvl: torch.randn(2, channels_s, n, n, generator=g) for lvl, n in SIZES.items()}
    teacher = {lvl: torch.randn(2, channels_t, n, n, generator=g) for lvl, n in SIZES.items()}
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 14.0, 12.0], [30.0, 20.0, 60.0, 52.0]])},
               {"boxes": torch.zeros(0, 4)}]
    task = TASKS.get("detection")()
    images = [torch.zeros(3, 64, 64), torch.zeros(3, 64, 64)]
    return LossInputs(student, teacher, targets, {"classification": torch.tensor(1.5)}, task, images)


def build(method_cls, inputs, **hparams):
    method = method_cls(**hparams)
    shapes_s = {k: v.shape for k, v in inputs.student.items()}
    shapes_t = {k: v.shape for k, v in inputs.teacher.items()}
    return method, method.build_extras(shapes_s, shapes_t)


def level_anchors(inputs):
    return [inputs.task.anchors_at(level, (SIZES[level],) * 2, (64, 64)) for level in LEVELS]


@pytest.mark.parametrize("method_cls", [FGFI, FGFIPerLevel])
def test_fgfi_is_the_weighted_sum_of_masked_imitation_over_levels(method_cls):
    """Cross-level (fgfi): one threshold per object over all levels' anchors; fgfi-per-level: one per level."""
    inputs = make_inputs()
    method, extras = build(method_cls, inputs)
    terms = method.losses(inputs, extras)
    boxes, hws = [t["boxes"] for t in inputs.targets], [(SIZES[level],) * 2 for level in LEVELS]
    if method_cls is FGFI:
        masks = imitation_masks(boxes, level_anchors(inputs), hws, [3, 3, 3], psi=0.5)
    else:
        masks = [imitation_mask(boxes, a, hw, 3, psi=0.5) for a, hw in zip(level_anchors(inputs), hws, strict=True)]
    expected = 0.0
    for level, mask in zip(LEVELS, masks, strict=True):
        adapted = extras[level.replace(".", "_")](inputs.student[level])
        expected = expected + imitation_loss(adapted, inputs.teacher[level], mask)
    assert terms["classification"].item() == 1.5
    torch.testing.assert_close(terms["imitation"], 0.01 * expected)


def test_a_small_object_marks_no_coarse_cells_with_the_cross_level_threshold():
    """A 6x6 box fits the stride-4 anchors (size 8) far better than the stride-16 ones (size 32):
    with one threshold across levels it marks nothing on neck.p4; per level it still does."""
    inputs = make_inputs()
    inputs.targets = [{"boxes": torch.tensor([[40.0, 40.0, 46.0, 46.0]])}] * 2
    cross = FGFI().masks(inputs, inputs.student)
    per_level = FGFIPerLevel().masks(inputs, inputs.student)
    assert cross["neck.p2"].sum() > 0 and torch.equal(cross["neck.p2"], per_level["neck.p2"])
    assert cross["neck.p4"].sum() == 0 < per_level["neck.p4"].sum()


def test_fgfi_mask_covers_objects_only():
    inputs = make_inputs()
    method, _ = build(FGFI, inputs)
    mask = method.masks(inputs, inputs.student)["neck.p2"]
    assert mask[1].sum() == 0  # the image without objects imitates nothing
    assert 0 < mask[0].sum() < 256  # some, not all, locations near the two boxes
    assert mask[0, 0:4, 0:4].sum() > 0 and mask[0, 15, 0] == 0


def test_hint_full_imitates_the_whole_map():
    inputs = make_inputs()
    method, extras = build(HintFull, inputs)
    expected = 0.0
    for level in LEVELS:
        adapted = extras[level.replace(".", "_")](inputs.student[level])
        diff = (adapted - inputs.teacher[level]) ** 2
        expected = expected + diff.sum() / (2 * diff.shape[0] * diff.shape[2] * diff.shape[3])
    torch.testing.assert_close(method.losses(inputs, extras)["imitation"], 0.01 * expected)


def test_adapters_map_student_to_teacher_channels():
    inputs = make_inputs(channels_s=4, channels_t=6)
    _, extras = build(FGFI, inputs)
    for level in LEVELS:
        assert extras[level.replace(".", "_")](inputs.student[level]).shape == inputs.teacher[level].shape


@pytest.mark.parametrize("level,stride", [("neck.p2", 4), ("neck.p3", 8), ("neck.p4", 16)])
def test_task_anchors_equal_the_detectors(level, stride):
    task = TASKS.get("detection")()
    n = 64 // stride
    generator = anchor_generator()
    feature_maps = [torch.zeros(1, 1, 64 // s, 64 // s) for s in (4, 8, 16)]
    ours = task.anchors_at(level, (n, n), (64, 64))
    theirs = generator(ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)]), feature_maps)[0]
    start = sum((64 // s) ** 2 * 3 for s in (4, 8, 16) if s < stride)
    torch.testing.assert_close(ours, theirs[start : start + n * n * 3])
