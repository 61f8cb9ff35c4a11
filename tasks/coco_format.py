"""COCO files and evaluation shared by the tasks that use the COCO format (detection, pose).

Reading: the JSON and its image entries, checked with errors that name the
file. Evaluation: COCO objects built in memory from dicts (no temporary files),
every pycocotools print silenced; the ground truth is copied, because COCOeval
writes into its annotations.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from bench.errors import DataError


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_coco_json(path: Path, label: str, annotations_required: bool = True) -> dict[str, Any]:
    """The COCO dict in ``path``, with list-valued images, categories (and annotations)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {label} {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{label} {path} holds a JSON {type(data).__name__}, not an object")
    for key in ("images", "categories", *(("annotations",) if annotations_required else ())):
        if not isinstance(data.get(key), list):
            raise DataError(f"{label} {path} has no list {key!r}")
    if not isinstance(data.get("annotations", []), list):
        raise DataError(f"{label} {path}: 'annotations' is not a list")
    return data


def annotation_header(ann: Any, index: int, path: Path, images: dict[int, dict], seen: set,
                      label: str) -> tuple[str, dict]:
    """Check an annotation's id (an integer, not seen before) and its image; return the
    ``where`` prefix for further error messages (file and annotation id) and the image entry."""
    if not isinstance(ann, dict) or not is_int(ann.get("id")):
        raise DataError(f"{label} {path}: annotation #{index} has no integer 'id'")
    where = f"{label} {path}: annotation id {ann['id']}"
    if ann["id"] in seen:
        raise DataError(f"{where} appears twice")
    seen.add(ann["id"])
    image = images.get(ann.get("image_id")) if is_int(ann.get("image_id")) else None
    if image is None:
        raise DataError(f"{where} refers to image_id {ann.get('image_id')!r}, which has no entry in 'images'")
    return where, image


def image_entries(data: dict, path: Path, label: str) -> dict[int, dict]:
    """Image id -> image entry, each checked for id, file_name, width and height."""
    images: dict[int, dict] = {}
    for i, entry in enumerate(data["images"]):
        ok = isinstance(entry, dict) and is_int(entry.get("id")) and isinstance(entry.get("file_name"), str)
        ok = ok and all(is_int(entry.get(k)) and entry[k] > 0 for k in ("width", "height"))
        if not ok:
            raise DataError(f"{label} {path}: image entry #{i} needs an integer 'id', a 'file_name' "
                            "and positive integer 'width' and 'height'")
        if entry["id"] in images:
            raise DataError(f"{label} {path}: image id {entry['id']} appears twice")
        images[entry["id"]] = entry
    return images


def coco_from_dict(ground_truth: dict, annotations: list[dict]) -> COCO:
    """A COCO index over copies of ``ground_truth``'s images and categories and the given annotations."""
    coco = COCO()
    coco.dataset = {
        "info": dict(ground_truth.get("info", {})),
        "images": [dict(img) for img in ground_truth["images"]],
        "annotations": annotations,
        "categories": [dict(cat) for cat in ground_truth["categories"]],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def evaluate(gt: COCO, results: list[dict], iou_type: str, metric_names: Sequence[str],
             sigmas: np.ndarray | None = None) -> dict[str, float]:
    """COCOeval's first ``len(metric_names)`` summary numbers in percent (``nan`` where COCO says -1).

    ``results`` may be empty: then every AP is 0 where there is ground truth.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results) if results else _empty_results(gt)
        evaluator = COCOeval(gt, dt, iouType=iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats[: len(metric_names)]
    return {name: (math.nan if value < 0 else 100.0 * float(value))
            for name, value in zip(metric_names, stats, strict=True)}


def _empty_results(gt: COCO) -> COCO:
    """A results object with no detections (``loadRes`` refuses an empty list)."""
    dt = COCO()
    dt.dataset = {"images": [dict(img) for img in gt.dataset["images"]], "annotations": [],
                  "categories": [dict(cat) for cat in gt.dataset["categories"]]}
    with contextlib.redirect_stdout(io.StringIO()):
        dt.createIndex()
    return dt
