"""Dataset-level mIoU from a confusion matrix: hand-computed values, accumulation, ignore labels."""

import math

import pytest
import torch

from tasks.segmentation.metric import ConfusionMatrix

# 3 classes, one 2x4 image.
TARGET = [[0, 0, 1, 1],
          [2, 2, 2, 1]]
PRED = [[0, 1, 1, 1],
        [2, 0, 2, 2]]
# (target, pred) pairs: (0,0) (0,1) (1,1) (1,1) / (2,2) (2,0) (2,2) (1,2)
# M[target][pred]:
#            p=0 p=1 p=2   row sum
#   t=0  [    1,  1,  0 ]    2
#   t=1  [    0,  2,  1 ]    3
#   t=2  [    1,  0,  2 ]    3
#   col sum   2   3   3
# IoU_0 = 1 / (2 + 2 - 1) = 1/3
# IoU_1 = 2 / (3 + 3 - 2) = 1/2
# IoU_2 = 2 / (3 + 3 - 2) = 1/2
# mIoU = (1/3 + 1/2 + 1/2) / 3 = 4/9 = 44.44...%; pixel accuracy = (1 + 2 + 2) / 8 = 62.5%
MATRIX = [[1, 1, 0], [0, 2, 1], [1, 0, 2]]
IOU = [100 / 3, 50.0, 50.0]
MIOU = 400 / 9
PIXEL_ACC = 62.5


def batch(rows):
    return torch.tensor([rows], dtype=torch.int64)


def test_hand_computed_confusion_matrix_and_ious():
    cm = ConfusionMatrix(3)
    cm.update(batch(PRED), batch(TARGET))
    assert cm.matrix.tolist() == MATRIX
    out = cm.compute()
    assert out["iou_per_class"] == pytest.approx(IOU)
    assert out["miou"] == pytest.approx(MIOU)
    assert out["pixel_acc"] == pytest.approx(PIXEL_ACC)


def test_zero_union_class_is_nan_and_excluded_from_the_mean():
    # Same image, 4 classes: class 3 is neither in the target nor predicted.
    cm = ConfusionMatrix(4)
    cm.update(batch(PRED), batch(TARGET))
    out = cm.compute()
    assert out["iou_per_class"][:3] == pytest.approx(IOU)
    assert math.isnan(out["iou_per_class"][3])
    assert out["miou"] == pytest.approx(MIOU)  # mean over 3 classes, not 4


def test_class_only_predicted_counts_as_zero_iou():
    # target [0, 0], pred [0, 1]: class 1 has union 1 and IoU 0 -> included.
    # IoU_0 = 1 / (2 + 1 - 1) = 1/2, IoU_1 = 0 / (0 + 1 - 0) = 0 -> mIoU 25%; class 2 nan.
    cm = ConfusionMatrix(3)
    cm.update(batch([[0, 1]]), batch([[0, 0]]))
    out = cm.compute()
    assert out["iou_per_class"][:2] == pytest.approx([50.0, 0.0])
    assert math.isnan(out["iou_per_class"][2])
    assert out["miou"] == pytest.approx(25.0)
    assert out["pixel_acc"] == pytest.approx(50.0)


def test_ignore_label_and_out_of_range_targets_are_not_counted():
    # Append a third row of pixels whose targets are 255 (ignore) or 7 (>= C) or -1, with arbitrary
    # (even "correct-looking") predictions: the matrix and every number must stay as above.
    target = TARGET + [[255, 255, 7, -1]]
    pred = PRED + [[0, 2, 1, 0]]
    cm = ConfusionMatrix(3)
    cm.update(batch(pred), batch(target))
    assert cm.matrix.tolist() == MATRIX
    out = cm.compute()
    assert out["miou"] == pytest.approx(MIOU)
    assert out["pixel_acc"] == pytest.approx(PIXEL_ACC)


def test_accumulation_is_dataset_level_not_mean_of_per_image_miou():
    # image A: target [0, 0], pred [0, 0] -> per-image mIoU: IoU_0 = 1 -> 100%
    # image B: target [0, 1], pred [1, 1] -> IoU_0 = 0/1 = 0, IoU_1 = 1/2 -> per-image mIoU 25%
    # mean of per-image mIoUs = 62.5%
    # dataset matrix: pairs (0,0) (0,0) (0,1) (1,1) -> M = [[2, 1], [0, 1]]
    #   IoU_0 = 2 / (3 + 2 - 2) = 2/3, IoU_1 = 1 / (1 + 2 - 1) = 1/2 -> mIoU = 7/12 = 58.33%
    a_t, a_p = [[0, 0]], [[0, 0]]
    b_t, b_p = [[0, 1]], [[1, 1]]

    two_batches = ConfusionMatrix(2)
    two_batches.update(batch(a_p), batch(a_t))
    two_batches.update(batch(b_p), batch(b_t))

    one_batch = ConfusionMatrix(2)
    one_batch.update(torch.tensor([a_p, b_p]), torch.tensor([a_t, b_t]))

    assert two_batches.matrix.tolist() == [[2, 1], [0, 1]] == one_batch.matrix.tolist()
    assert two_batches.compute()["miou"] == pytest.approx(700 / 12)
    assert one_batch.compute()["miou"] == pytest.approx(700 / 12)
    assert two_batches.compute()["pixel_acc"] == pytest.approx(75.0)

    per_image = []
    for p, t in ((a_p, a_t), (b_p, b_t)):
        cm = ConfusionMatrix(2)
        cm.update(batch(p), batch(t))
        per_image.append(cm.compute()["miou"])
    assert per_image == pytest.approx([100.0, 25.0])
    mean_of_images = sum(per_image) / 2
    assert mean_of_images == pytest.approx(62.5)
    assert abs(mean_of_images - two_batches.compute()["miou"]) > 4.0


def test_reset_empty_and_bad_inputs():
    cm = ConfusionMatrix(2)
    out = cm.compute()
    assert math.isnan(out["miou"]) and math.isnan(out["pixel_acc"])
    assert all(math.isnan(v) for v in out["iou_per_class"])
    cm.update(batch([[0, 1]]), batch([[0, 1]]))
    assert cm.compute()["miou"] == pytest.approx(100.0)
    cm.reset()
    assert cm.matrix.tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError):
        cm.update(batch([[0, 1]]), batch([[0, 1, 1]]))
    with pytest.raises(ValueError):
        cm.update(batch([[0, 2]]), batch([[0, 1]]))  # prediction 2 outside [0, 2) on a counted pixel
    with pytest.raises(TypeError):
        cm.update(torch.zeros(1, 1, 2), batch([[0, 1]]))
    cm.update(batch([[5, 1]]), batch([[255, 1]]))  # an out-of-range prediction on an ignored pixel is fine
    assert cm.matrix.tolist() == [[0, 0], [0, 1]]
