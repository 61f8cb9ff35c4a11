"""COCO box metrics with pycocotools, computed in memory.

``coco_map(ground_truth, detections)`` runs the standard ``COCOeval`` (``iouType="bbox"``,
101-point interpolated precision, up to 100 detections per image, areas split at 32² and
96² pixels) and returns the six AP numbers of ``COCOeval.stats[0:6]`` in percent.

Conventions:

* ``ground_truth`` is a COCO instances dict (``images``, ``annotations`` with ``bbox`` as
  xywh pixels, ``area``, ``iscrowd``, ``categories``). It is copied, never modified, so the
  same dict can be evaluated many times.
* each detection entry is ``{"image_id", "boxes": (K, 4) xyxy pixels, "scores": (K,),
  "labels": (K,) category ids}`` as tensors or arrays; boxes are converted to xywh.
* evaluation covers every image and every category of the ground truth. Detections whose
  label is not a ground-truth category are ignored by ``COCOeval`` (as in COCO itself).
* a value COCOeval cannot compute (its ``-1``: no ground truth in that area range, or none
  at all) is returned as ``nan``, never ``-1``.
* with no detections at all every AP whose ground truth exists is ``0.0`` (pycocotools'
  ``loadRes`` rejects an empty list, so an empty result set is built directly).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO

from tasks.coco_format import coco_from_dict, evaluate

METRIC_NAMES = ("map", "map50", "map75", "map_small", "map_medium", "map_large")


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _ground_truth_coco(ground_truth: dict) -> COCO:
    """A COCO object over a copy of ``ground_truth`` (COCOeval writes ``ignore`` into annotations)."""
    annotations = []
    for ann in ground_truth.get("annotations", []):
        ann = dict(ann)
        x, y, w, h = ann["bbox"]
        ann.setdefault("area", float(w) * float(h))
        ann.setdefault("iscrowd", 0)
        annotations.append(ann)
    return coco_from_dict(ground_truth, annotations)


def _results(detections: list[dict], image_ids: set[int]) -> list[dict]:
    """Detections in COCO results format (bbox xywh, score, category_id)."""
    results = []
    for det in detections:
        image_id = int(det["image_id"])
        boxes = _as_numpy(det["boxes"]).astype(np.float64).reshape(-1, 4)
        scores = _as_numpy(det["scores"]).astype(np.float64).reshape(-1)
        labels = _as_numpy(det["labels"]).astype(np.int64).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"image {image_id}: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels")
        if len(boxes) and image_id not in image_ids:
            raise ValueError(f"detections for image {image_id}, which is not in the ground truth")
        for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist(), strict=True):
            results.append({"image_id": image_id, "category_id": int(label),
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return results


def coco_map(ground_truth: dict, detections: list[dict]) -> dict[str, float]:
    """COCO box AP in percent: ``map`` (AP@[.5:.95]), ``map50``, ``map75``, ``map_small/medium/large``.

    Values lie in 0..100; ``nan`` where COCOeval has nothing to average (e.g. ``map_large``
    when no ground-truth box has area above 96²).
    """
    gt = _ground_truth_coco(ground_truth)
    results = _results(detections, set(gt.getImgIds()))
    return evaluate(gt, results, "bbox", METRIC_NAMES)
