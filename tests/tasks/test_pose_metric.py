"""Pose metrics: OKS AP through pycocotools (K=13) and PCK, against hand-computed values."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from tasks.pose.metric import oks_ap, pck

# COCO sigmas without eyes and ears: nose, shoulders, elbows, wrists, hips, knees, ankles
SIGMAS = [0.026, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
K = len(SIGMAS)


def _ground_truth(num_images=4, unlabelled=()):
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(num_images):
        images.append({"id": i + 1, "width": 320, "height": 320, "file_name": f"{i}.png"})
        for j in range(2):  # two persons per image
            w, h = 40.0 + 30 * i + 10 * j, 80.0 + 40 * i
            x0, y0 = 10.0 + 150 * j, 20.0
            kps = np.zeros((K, 3))
            kps[:, 0] = x0 + rng.uniform(0, w, K)
            kps[:, 1] = y0 + rng.uniform(0, h, K)
            kps[:, 2] = 2
            for idx in unlabelled:
                kps[idx] = 0
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1,
                                "keypoints": kps.reshape(-1).tolist(), "bbox": [x0, y0, w, h],
                                "area": w * h, "num_keypoints": int((kps[:, 2] > 0).sum()), "iscrowd": 0})
    categories = [{"id": 1, "name": "person", "keypoints": [str(k) for k in range(K)], "skeleton": []}]
    return {"images": images, "annotations": annotations, "categories": categories}


def _perfect_predictions(gt):
    return [{"image_id": a["image_id"], "keypoints": np.asarray(a["keypoints"]).reshape(K, 3), "score": 0.9}
            for a in gt["annotations"]]


def test_perfect_predictions_give_100():
    gt = _ground_truth()
    before = copy.deepcopy(gt)
    result = oks_ap(gt, _perfect_predictions(gt), SIGMAS)
    assert set(result) == {"ap", "ap50", "ap75"}
    assert result == pytest.approx({"ap": 100.0, "ap50": 100.0, "ap75": 100.0})
    assert gt == before  # not modified


def test_flat_keypoints_accepted():
    gt = _ground_truth(num_images=2)
    preds = [{"image_id": a["image_id"], "keypoints": list(a["keypoints"]), "score": 1.0} for a in gt["annotations"]]
    assert oks_ap(gt, preds, SIGMAS)["ap"] == pytest.approx(100.0)


def test_hand_computed_oks():
    # Displace keypoint i by d_i = sqrt(2 c area) * 2 sigma_i, so every keypoint has
    # exp(-d^2 / (2 area (2 sigma)^2)) = exp(-c) and OKS = exp(-c) = 0.72 for every person.
    # Thresholds .50 .55 .60 .65 .70 pass, .75 ... .95 fail: AP = 50, AP50 = 100, AP75 = 0.
    gt = _ground_truth()
    c = -math.log(0.72)
    preds = []
    for a in gt["annotations"]:
        kps = np.asarray(a["keypoints"]).reshape(K, 3).copy()
        d = np.sqrt(2 * c * a["area"]) * 2 * np.asarray(SIGMAS)
        kps[:, 0] += d * 0.6
        kps[:, 1] -= d * 0.8
        preds.append({"image_id": a["image_id"], "keypoints": kps, "score": 0.5})
    result = oks_ap(gt, preds, SIGMAS)
    assert result == pytest.approx({"ap": 50.0, "ap50": 100.0, "ap75": 0.0})


def test_ap_decreases_with_displacement():
    gt = _ground_truth()
    aps = []
    for offset in [0.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0]:
        preds = _perfect_predictions(gt)
        for p in preds:
            p["keypoints"] = p["keypoints"] + np.array([offset, offset, 0.0])
        aps.append(oks_ap(gt, preds, SIGMAS)["ap"])
    assert aps[0] == pytest.approx(100.0)
    assert all(a > b for a, b in zip(aps[:-1], aps[1:], strict=True)), aps
    assert aps[-1] < 20.0


def test_unlabelled_ground_truth_keypoints_do_not_count():
    gt = _ground_truth(unlabelled=(0, 5, 12))
    preds = _perfect_predictions(gt)
    for p in preds:
        p["keypoints"][[0, 5, 12], :2] = 1000.0  # garbage where the ground truth is unlabelled
    assert oks_ap(gt, preds, SIGMAS)["ap"] == pytest.approx(100.0)


def test_empty_predictions_give_zeros():
    assert oks_ap(_ground_truth(), [], SIGMAS) == {"ap": 0.0, "ap50": 0.0, "ap75": 0.0}


def test_prediction_for_unknown_image_raises():
    gt = _ground_truth(num_images=1)
    with pytest.raises(ValueError):
        oks_ap(gt, [{"image_id": 99, "keypoints": np.zeros((K, 3)), "score": 1.0}], SIGMAS)


def test_pck_perfect_and_hand_computed():
    gt = np.zeros((2, 4, 3))
    gt[..., 0] = np.arange(8).reshape(2, 4) * 10.0
    gt[..., 1] = 50.0
    gt[..., 2] = [[2, 2, 1, 0], [2, 2, 0, 1]]
    assert pck(gt[..., :2], gt, np.array([100.0, 200.0])) == pytest.approx(100.0)

    # box sizes 100 and 200 -> thresholds 10 and 20 px (threshold=0.1)
    offsets = np.array([[5.0, 15.0, 0.0, 50.0],     # ok, miss, ok, (unlabelled)
                        [19.0, 21.0, 500.0, 0.0]])  # ok, miss, (unlabelled), ok
    pred = gt[..., :2].copy()
    pred[..., 0] += offsets * 0.6
    pred[..., 1] += offsets * 0.8
    assert pck(pred, gt, np.array([100.0, 200.0])) == pytest.approx(100.0 * 4 / 6)
    # threshold 0.2 -> 20 and 40 px: only the 50 px one (unlabelled) would miss
    assert pck(pred, gt, np.array([100.0, 200.0]), threshold=0.2) == pytest.approx(100.0)
    # nothing labelled -> nan
    gt_none = gt.copy()
    gt_none[..., 2] = 0
    assert math.isnan(pck(pred, gt_none, np.array([100.0, 200.0])))
