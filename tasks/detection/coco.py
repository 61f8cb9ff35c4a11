"""COCO instances JSON in and out: real COCO folders, and generated scenes written as COCO.

A COCO folder has the layout the public download ships::

    <root>/annotations/instances_<split>.json
    <root>/<split>/<file_name>            (one image per ``images`` entry)

:func:`load_coco` reads it into RGB uint8 images (C,H,W) at their own sizes
and per-image targets ``{"boxes" (K,4) float32 xyxy pixels, "labels" (K,)
int64, "image_id"}``. COCO's category ids are sparse (1..90 for 80 classes),
a detector's are contiguous, so categories are mapped in order of id to
1..C, and the returned COCO dict carries the same remapped ids, so a
pycocotools evaluation against it scores detections in the model's ids.
Crowd annotations (``iscrowd=1``) are not training targets but stay in the
COCO dict, where pycocotools uses them to ignore matches.

Anything malformed raises :class:`DataError` naming the file, and for a bad
annotation its id. Boxes may stick out of their image by up to
``BOX_TOLERANCE`` pixels (rounding in real annotation files) and are then
clipped to it.

:func:`write_scenes_as_coco` writes generated scenes in this layout, so the
generated data can go through the same loader as real COCO.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import DataError
from tasks.coco_format import annotation_header, image_entries, is_int, read_coco_json
from bench.paths import atomic_write_bytes, atomic_write_text

#: pixels a box may extend beyond its image before it is an error.
BOX_TOLERANCE = 1.0
LAYOUT = "expected layout: <root>/annotations/instances_<split>.json and the images in <root>/<split>/"


def _layout(root: Path, split: str) -> str:
    return f"expected {root}/annotations/instances_{split}.json and the images in {root}/{split}/"


# ----------------------------------------------------------------------------- writing


def to_coco(annotations: list[dict], classes: tuple[str, ...], size_hw: list[tuple[int, int]],
            file_names: list[str] | None = None) -> dict:
    """A COCO instances dict for per-image ``{"boxes" xyxy, "labels" 1..C}`` annotations.

    ``size_hw[i]`` is image i's (height, width). Image ids are each
    annotation's ``"image_id"`` when it has one, else ``i + 1``; annotation ids
    run from 1; category ``i + 1`` is ``classes[i]``. ``area`` is the box area
    (what pycocotools' small/medium/large ranges then measure). File names
    default to ``<image id, 6 digits>.png``.
    """
    if len(size_hw) != len(annotations):
        raise ValueError(f"to_coco: {len(annotations)} annotations but {len(size_hw)} image sizes")
    if file_names is not None and len(file_names) != len(annotations):
        raise ValueError(f"to_coco: {len(annotations)} annotations but {len(file_names)} file names")
    images, entries = [], []
    for i, (ann, (height, width)) in enumerate(zip(annotations, size_hw, strict=True)):
        image_id = int(ann.get("image_id", i + 1))
        name = file_names[i] if file_names is not None else f"{image_id:06d}.png"
        images.append({"id": image_id, "width": int(width), "height": int(height), "file_name": name})
        boxes = np.asarray(ann["boxes"], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(ann["labels"], dtype=np.int64).reshape(-1)
        if len(boxes) != len(labels):
            raise ValueError(f"to_coco: image {image_id} has {len(boxes)} boxes but {len(labels)} labels")
        if len(labels) and (labels.min() < 1 or labels.max() > len(classes)):
            raise ValueError(f"to_coco: image {image_id} has labels outside 1..{len(classes)}")
        for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist(), strict=True):
            w, h = x2 - x1, y2 - y1
            entries.append({"id": len(entries) + 1, "image_id": image_id, "category_id": int(label),
                            "bbox": [x1, y1, w, h], "area": w * h, "iscrowd": 0})
    categories = [{"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(classes)]
    return {"info": {"description": "KDBench detection ground truth"}, "licenses": [],
            "images": images, "annotations": entries, "categories": categories}


def write_scenes_as_coco(images: np.ndarray | list[np.ndarray], annotations: list[dict], classes: tuple[str, ...],
                         out_dir: str | Path, split: str) -> Path:
    """Write images (N,3,H,W) uint8 as PNGs under ``out_dir/<split>/`` and their COCO JSON
    at ``out_dir/annotations/instances_<split>.json``; return ``out_dir`` (the root for
    :func:`load_coco_root`). Every file is written atomically.
    """
    from PIL import Image

    out_dir = Path(out_dir)
    if len(images) != len(annotations):
        raise ValueError(f"write_scenes_as_coco: {len(images)} images but {len(annotations)} annotations")
    names, sizes = [], []
    for i, image in enumerate(images):
        image = np.asarray(image, dtype=np.uint8)
        image_id = int(annotations[i].get("image_id", i + 1))
        name = f"{image_id:06d}.png"
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(buffer, format="PNG")
        atomic_write_bytes(out_dir / split / name, buffer.getvalue())
        names.append(name)
        sizes.append((image.shape[1], image.shape[2]))
    coco = to_coco(annotations, tuple(classes), sizes, names)
    atomic_write_text(out_dir / "annotations" / f"instances_{split}.json", json.dumps(coco))
    return out_dir


# ----------------------------------------------------------------------------- reading


def _categories(data: dict, path: Path) -> tuple[tuple[str, ...], dict[int, int]]:
    """Class names in order of category id, and category id -> contiguous id 1..C."""
    names: dict[int, str] = {}
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise DataError(f"COCO annotation file {path}: category entry #{i} needs an integer 'id' and a 'name'")
        if cat["id"] in names:
            raise DataError(f"COCO annotation file {path}: category id {cat['id']} appears twice")
        names[cat["id"]] = cat["name"]
    if not names:
        raise DataError(f"COCO annotation file {path} lists no categories")
    ids = sorted(names)
    return tuple(names[c] for c in ids), {c: i + 1 for i, c in enumerate(ids)}


def _check_annotation(ann: Any, index: int, path: Path, images: dict[int, dict], cat_map: dict[int, int],
                      seen: set) -> list[float]:
    """Validate one annotation; return its box as xyxy clipped to the image."""
    where, image = annotation_header(ann, index, path, images, seen, "COCO annotation file")
    if not is_int(ann.get("category_id")) or ann["category_id"] not in cat_map:
        raise DataError(f"{where} has category_id {ann.get('category_id')!r}, which is not in 'categories' "
                        f"(ids {sorted(cat_map)})")
    bbox = ann.get("bbox")
    if (not isinstance(bbox, list) or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)):
        raise DataError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    width, height = image["width"], image["height"]
    if w <= 0 or h <= 0:
        raise DataError(f"{where}: bbox {bbox} has non-positive width or height")
    x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol or x2 <= x1 or y2 <= y1:
        raise DataError(f"{where}: bbox [x, y, w, h] = {bbox} lies outside its image (image id {image['id']}, "
                        f"{width}x{height}, file {image['file_name']})")
    return [x1, y1, x2, y2]


def _read_image(path: Path, entry: dict, annotation_file: Path) -> np.ndarray:
    """One image as RGB uint8 (3,H,W), checked against its entry's width and height."""
    from PIL import Image

    if not path.is_file():
        raise DataError(f"image file {path} (image id {entry['id']} in {annotation_file}) does not exist; {LAYOUT}")
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError, ValueError, DecompressionBombError, ...
        raise DataError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from exc
    if rgb.shape[:2] != (entry["height"], entry["width"]):
        raise DataError(f"image {path} is {rgb.shape[1]}x{rgb.shape[0]} but {annotation_file} gives image id "
                        f"{entry['id']} as {entry['width']}x{entry['height']}")
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def load_coco(annotation_file: str | Path, image_dir: str | Path
              ) -> tuple[list[np.ndarray], list[dict], tuple[str, ...], dict]:
    """Read a COCO instances JSON and its image folder.

    Returns ``(images, targets, classes, coco)``: RGB uint8 images (3,H,W) in
    the order of the file's ``images`` list; targets ``{"boxes" (K,4) float32
    xyxy clipped to the image, "labels" (K,) int64 in 1..C, "image_id"}`` without
    crowd annotations (an image without boxes gets (0,4) and (0,)); class names
    in order of category id; and the COCO dict with category ids remapped to
    1..C (``area`` and ``iscrowd`` filled in where missing). Every image is held
    in memory.
    """
    annotation_file, image_dir = Path(annotation_file), Path(image_dir)
    if not annotation_file.is_file():
        raise DataError(f"COCO annotation file {annotation_file} does not exist; {LAYOUT}")
    if not image_dir.is_dir():
        raise DataError(f"COCO image folder {image_dir} does not exist; {LAYOUT}")
    data = read_coco_json(annotation_file, "COCO annotation file", annotations_required=False)
    classes, cat_map = _categories(data, annotation_file)
    entries = image_entries(data, annotation_file, "COCO annotation file")

    boxes: dict[int, list[list[float]]] = {image_id: [] for image_id in entries}
    labels: dict[int, list[int]] = {image_id: [] for image_id in entries}
    remapped, seen = [], set()
    for index, ann in enumerate(data.get("annotations", [])):
        box = _check_annotation(ann, index, annotation_file, entries, cat_map, seen)
        label = cat_map[ann["category_id"]]
        crowd = bool(ann.get("iscrowd", 0))
        x, y, w, h = (float(v) for v in ann["bbox"])
        remapped.append({**ann, "category_id": label, "area": ann.get("area", w * h), "iscrowd": int(crowd)})
        if not crowd:
            boxes[ann["image_id"]].append(box)
            labels[ann["image_id"]].append(label)

    images, targets = [], []
    for image_id, entry in entries.items():
        images.append(_read_image(image_dir / entry["file_name"], entry, annotation_file))
        targets.append({"boxes": np.asarray(boxes[image_id], dtype=np.float32).reshape(-1, 4),
                        "labels": np.asarray(labels[image_id], dtype=np.int64).reshape(-1),
                        "image_id": image_id})
    categories = [{**cat, "id": cat_map[cat["id"]]} for cat in sorted(data["categories"], key=lambda c: c["id"])]
    coco = {**data, "annotations": remapped, "categories": categories}
    return images, targets, classes, coco


def annotation_path(root: str | Path, split: str) -> Path:
    """``<root>/annotations/instances_<split>.json``."""
    return Path(root) / "annotations" / f"instances_{split}.json"


def load_coco_root(root: str | Path, split: str) -> tuple[list[np.ndarray], list[dict], tuple[str, ...], dict]:
    """:func:`load_coco` of ``<root>/annotations/instances_<split>.json`` and ``<root>/<split>/``."""
    root = Path(root)
    annotation_file = annotation_path(root, split)
    image_dir = root / split
    if not annotation_file.is_file():
        raise DataError(f"COCO annotation file {annotation_file} does not exist; {_layout(root, split)}")
    if not image_dir.is_dir():
        raise DataError(f"COCO image folder {image_dir} does not exist; {_layout(root, split)}")
    return load_coco(annotation_file, image_dir)
