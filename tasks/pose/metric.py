"""Pose metrics: COCO keypoint AP (OKS) with pycocotools, in memory, and PCK.

``oks_ap(ground_truth, predictions, sigmas)`` runs ``COCOeval(iouType="keypoints")`` with
``params.kpt_oks_sigmas = np.array(sigmas)`` (so any number K of keypoints works) and returns
``{"ap", "ap50", "ap75"}`` = ``COCOeval.stats[0:3]`` in percent (AP@OKS[.5:.95], OKS .5, OKS .75;
area range "all", up to 20 detections per image as in COCO).

Conventions:

* ``ground_truth`` is a COCO person_keypoints dict: ``images``, ``annotations`` (``image_id``,
  ``category_id``, flat ``keypoints`` ``[x1, y1, v1, ...]``, ``area``, ``bbox`` xywh,
  ``num_keypoints``, ``iscrowd``) and ``categories``. It is copied, never modified; annotation
  ids are renumbered 1..n in the copy (COCOeval treats an id of 0 as "unmatched").
  ``num_keypoints`` defaults to the count of ``v > 0``, ``iscrowd`` to 0, ``area`` to bbox w*h.
  As in COCO, annotations with ``num_keypoints == 0`` are ignored.
* each prediction is ``{"image_id", "keypoints": (K, 3) or flat 3K, "score"}`` (arrays, tensors
  or lists; optional ``"category_id"``, default the first ground-truth category). Only x, y
  enter the OKS; the third value is passed through.
* with no predictions at all the result is all zeros; a value COCOeval cannot compute (its -1,
  e.g. no usable ground truth) is returned as ``nan``.

``pck(pred, gt, box_sizes, threshold)``: percent of labelled (``v > 0``) keypoints whose
Euclidean error is strictly below ``threshold * box_size``, with ``box_size = max(box w, box h)``
of that instance in the same pixels as the keypoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO

from tasks.coco_format import coco_from_dict, evaluate

METRIC_NAMES = ("ap", "ap50", "ap75")


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().float().numpy()
    return np.asarray(value)


def _ground_truth_coco(ground_truth: dict, num_keypoints: int) -> COCO:
    annotations = []
    for new_id, ann in enumerate(ground_truth.get("annotations", []), start=1):
        ann = dict(ann)
        kps = _as_numpy(ann["keypoints"]).astype(np.float64).reshape(-1)
        if kps.size != 3 * num_keypoints:
            raise ValueError(f"ground-truth annotation has {kps.size} keypoint values, expected {3 * num_keypoints}")
        ann["keypoints"] = kps.tolist()
        ann["id"] = new_id
        ann.setdefault("num_keypoints", int((kps[2::3] > 0).sum()))
        ann.setdefault("iscrowd", 0)
        x, y, w, h = ann["bbox"]
        ann.setdefault("area", float(w) * float(h))
        annotations.append(ann)
    return coco_from_dict(ground_truth, annotations)


def _results(predictions: list[dict], image_ids: set[int], category_id: int, num_keypoints: int) -> list[dict]:
    results = []
    for pred in predictions:
        image_id = int(pred["image_id"])
        if image_id not in image_ids:
            raise ValueError(f"prediction for image {image_id}, which is not in the ground truth")
        kps = _as_numpy(pred["keypoints"]).astype(np.float64).reshape(-1)
        if kps.size != 3 * num_keypoints:
            raise ValueError(f"image {image_id}: {kps.size} keypoint values, expected {3 * num_keypoints}")
        results.append({"image_id": image_id, "category_id": int(pred.get("category_id", category_id)),
                        "keypoints": kps.tolist(), "score": float(pred["score"])})
    return results


def oks_ap(ground_truth: dict, predictions: list[dict], sigmas: Sequence[float]) -> dict[str, float]:
    """COCO keypoint AP in percent: ``ap`` (OKS .50:.95), ``ap50``, ``ap75``."""
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if not predictions:
        return {name: 0.0 for name in METRIC_NAMES}
    gt = _ground_truth_coco(ground_truth, len(sigmas))
    results = _results(predictions, set(gt.getImgIds()), int(ground_truth["categories"][0]["id"]), len(sigmas))
    return evaluate(gt, results, "keypoints", METRIC_NAMES, sigmas=sigmas)


def pck(pred: Any, gt: Any, box_sizes: Any, threshold: float = 0.1) -> float:
    """Percent of labelled keypoints with error ``< threshold * box_size`` (``nan`` if none labelled).

    ``pred`` ``(N, K, 2)`` ``[x, y]``, ``gt`` ``(N, K, 3)`` ``[x, y, v]``, ``box_sizes`` ``(N,)``
    = ``max(box w, box h)`` per instance; keypoints with ``v <= 0`` are excluded.
    """
    p = _as_numpy(pred).astype(np.float64)
    g = _as_numpy(gt).astype(np.float64)
    s = _as_numpy(box_sizes).astype(np.float64).reshape(-1)
    if p.ndim != 3 or p.shape[-1] != 2 or g.shape != p.shape[:2] + (3,) or s.shape != (p.shape[0],):
        raise ValueError(f"shapes pred {p.shape}, gt {g.shape}, box_sizes {s.shape} do not fit (N,K,2), (N,K,3), (N,)")
    labelled = g[..., 2] > 0
    if not labelled.any():
        return math.nan
    error = np.linalg.norm(p - g[..., :2], axis=-1)
    correct = error < threshold * s[:, None]
    return 100.0 * float(correct[labelled].sum()) / float(labelled.sum())
