"""COCO box AP through pycocotools: exact values on constructed cases, edge cases, conventions."""

import copy
import math

import numpy as np
import pytest
import torch

from tasks.detection.metric import METRIC_NAMES, coco_map

# xywh boxes; areas: small < 32² = 1024 <= medium < 96² = 9216 <= large
BOXES = {
    1: [(1, [10, 10, 20, 20]),        # small, area 400
        (2, [50, 50, 50, 50])],       # medium, 2500
    2: [(1, [20, 20, 120, 120]),      # large, 14400
        (2, [150, 150, 24, 24])],     # small, 576
    3: [(2, [30, 40, 100, 110]),      # large, 11000
        (1, [140, 10, 40, 40])],      # medium, 1600
}


def make_gt(boxes=BOXES, categories=(1, 2, 3)):
    """COCO instances dict; category 3 has no ground truth at all."""
    annotations = []
    for image_id, items in boxes.items():
        for category, (x, y, w, h) in items:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    return {"images": [{"id": i, "width": 200, "height": 200} for i in boxes],
            "annotations": annotations,
            "categories": [{"id": c, "name": f"c{c}"} for c in categories]}


def detections_from(boxes=BOXES, shift=0.0, label_map=None, as_numpy=False):
    """One detection per ground-truth box (score 1), xyxy, moved right by ``shift`` × box width."""
    out = []
    for image_id, items in boxes.items():
        xyxy = [[x + shift * w, y, x + shift * w + w, y + h] for _, (x, y, w, h) in items]
        labels = [label_map[c] if label_map else c for c, _ in items]
        det = {"image_id": image_id, "boxes": torch.tensor(xyxy, dtype=torch.float32),
               "scores": torch.ones(len(items)), "labels": torch.tensor(labels)}
        if as_numpy:
            det = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in det.items()}
        out.append(det)
    return out


@pytest.mark.parametrize("as_numpy", [False, True])
def test_perfect_predictions_give_100(as_numpy):
    result = coco_map(make_gt(), detections_from(as_numpy=as_numpy))
    assert set(result) == set(METRIC_NAMES)
    for name in METRIC_NAMES:  # every size range has ground truth here
        assert result[name] == pytest.approx(100.0, abs=1e-9), name


def test_shifted_predictions_lower_map_monotonically():
    # Shifting a box by f·w keeps its size: IoU = (1 - f) / (1 + f).
    # f = 0.1 -> 0.818: matched at IoU thresholds .50..80 (7 of 10)   -> AP 70
    # f = 0.3 -> 0.538: matched at .50 only (1 of 10)                    -> AP 10
    # f = 0.6 -> 0.25:  never matched                                    -> AP 0
    gt = make_gt()
    results = [coco_map(gt, detections_from(shift=f)) for f in (0.0, 0.1, 0.3, 0.6)]
    maps = [r["map"] for r in results]
    assert maps == pytest.approx([100.0, 70.0, 10.0, 0.0], abs=1e-9)
    assert maps[0] > maps[1] > maps[2] > maps[3]
    assert [r["map50"] for r in results] == pytest.approx([100.0, 100.0, 100.0, 0.0], abs=1e-9)
    assert [r["map75"] for r in results] == pytest.approx([100.0, 100.0, 0.0, 0.0], abs=1e-9)


@pytest.mark.parametrize("label_map", [{1: 2, 2: 1}, {1: 3, 2: 3}], ids=["swapped", "absent-category"])
def test_wrong_labels_give_zero(label_map):
    result = coco_map(make_gt(), detections_from(label_map=label_map))
    for name in METRIC_NAMES:
        assert result[name] == 0.0, name


def test_missed_box_gives_the_interpolated_value():
    # One category, two boxes, only one found: precision 1 up to recall 0.5 then 0, i.e. 51 of the
    # 101 recall points -> AP = 100 · 51/101 at every IoU threshold.
    boxes = {1: [(1, [10, 10, 40, 40]), (1, [100, 100, 40, 40])]}
    gt = make_gt(boxes, categories=(1,))
    dets = [{"image_id": 1, "boxes": torch.tensor([[10.0, 10.0, 50.0, 50.0]]), "scores": torch.tensor([0.9]),
             "labels": torch.tensor([1])}]
    result = coco_map(gt, dets)
    assert result["map"] == pytest.approx(100 * 51 / 101)
    assert result["map50"] == pytest.approx(100 * 51 / 101)


def test_no_detections_give_zero():
    gt = make_gt()
    for dets in ([], [{"image_id": 1, "boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
                       "labels": torch.zeros(0, dtype=torch.int64)}]):
        result = coco_map(gt, dets)
        for name in METRIC_NAMES:
            assert result[name] == 0.0, name


def test_size_ranges_without_ground_truth_are_nan():
    small_only = {1: [(1, [10, 10, 20, 20]), (2, [60, 60, 30, 30])], 2: [(1, [5, 5, 31, 31])]}  # areas < 1024
    gt = make_gt(small_only)
    result = coco_map(gt, detections_from(small_only))
    assert result["map"] == pytest.approx(100.0) and result["map_small"] == pytest.approx(100.0)
    assert math.isnan(result["map_medium"]) and math.isnan(result["map_large"])
    empty = coco_map(gt, [])
    assert empty["map"] == 0.0 and empty["map_small"] == 0.0 and math.isnan(empty["map_large"])


def test_area_split_uses_the_annotation_area():
    # a 20x20 box that is only found at IoU .5 makes map_small 10 while the other ranges stay 100
    gt = make_gt()
    dets = detections_from()
    dets[0]["boxes"] = dets[0]["boxes"].clone()
    dets[0]["boxes"][0] += torch.tensor([6.0, 0.0, 6.0, 0.0])  # shift 0.3 · 20 -> IoU 0.538
    result = coco_map(gt, dets)
    assert result["map_medium"] == pytest.approx(100.0) and result["map_large"] == pytest.approx(100.0)
    # small boxes: one per category (cat 1: AP 10, cat 2: AP 100) -> mean 55
    assert result["map_small"] == pytest.approx(55.0)


def test_ground_truth_is_not_modified_and_can_be_reused():
    gt = make_gt()
    before = copy.deepcopy(gt)
    first = coco_map(gt, detections_from(shift=0.1))
    assert gt == before
    assert coco_map(gt, detections_from(shift=0.1)) == first


def test_inputs_are_checked_and_silent(capsys):
    gt = make_gt()
    with pytest.raises(ValueError, match="not in the ground truth"):
        coco_map(gt, [{"image_id": 99, "boxes": np.zeros((1, 4)) + [0, 0, 5, 5], "scores": np.ones(1),
                       "labels": np.ones(1, dtype=np.int64)}])
    with pytest.raises(ValueError, match="boxes"):
        coco_map(gt, [{"image_id": 1, "boxes": torch.zeros(2, 4), "scores": torch.ones(1),
                       "labels": torch.ones(2)}])
    capsys.readouterr()
    coco_map(gt, detections_from())
    coco_map(gt, [])
    assert capsys.readouterr().out == ""
