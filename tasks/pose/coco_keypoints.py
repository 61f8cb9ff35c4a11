"""COCO person-keypoints JSON in and out, as top-down crops: real COCO folders and generated figures.

A COCO keypoints folder has the layout the public download ships::

    <root>/annotations/person_keypoints_<split>.json
    <root>/<split>/<file_name>            (one image per ``images`` entry)

:func:`load_coco_keypoints` turns every non-crowd person annotation into one
crop: its ``bbox`` is widened or heightened about its centre to the crop's
aspect ratio ``height:width``, scaled by ``padding`` (1.25, the usual top-down
context), cut out (the part beyond the image is black) and resized to
(height, width) with Pillow's antialiased bilinear filter. Keypoints go through
the same map, ``x' = (x - x0) * width / box_w`` (likewise y), in the continuous
pixel coordinates of :mod:`tasks.pose.figures` (pixel c covers ``[c, c+1)``).
Labelled keypoints that land outside the crop become ``v = 0, x = y = 0``,
the generator's convention. Crops come in the order of the file's ``images``
list, then of its ``annotations`` list within an image.

Anything malformed raises :class:`DataError` naming the file, and for a bad
annotation its id: a ``keypoints`` list whose length is not 3*K (K from the
annotation's category), a visibility outside 0..2, a labelled keypoint more
than ``KEYPOINT_TOLERANCE`` (10%) of the image's width/height beyond its
border, a bad bbox, a missing image file.

:func:`write_crops_as_coco` writes generated crops in this layout, with each
crop a whole image and its bbox the whole image ``[0, 0, W, H]``. Loading them
back with ``padding=1.0`` at the written size gives the crop box equal to the
image, so the pixels come back identical (tolerance 0: Pillow copies an image
resized to its own size over its own box) and the keypoints equal to float32
rounding (the JSON holds them at full float precision). With the default
``padding=1.25`` the crops are the images zoomed out by 1.25 about their centre.
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
from tasks.pose.figures import KEYPOINTS, SIGMAS, SKELETON

#: a labelled keypoint may lie this fraction of its image's width/height beyond the border.
KEYPOINT_TOLERANCE = 0.1
#: context around a person box, as a factor on its (aspect-corrected) side lengths.
PADDING = 1.25
LAYOUT = ("expected layout: <root>/annotations/person_keypoints_<split>.json and the images in "
          "<root>/<split>/")


#: the 17 keypoints of COCO's ``person`` category, in the order of ``person_keypoints_*.json``.
COCO_PERSON_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
#: COCO's published per-keypoint OKS sigmas for :data:`COCO_PERSON_KEYPOINTS` (Ronchi & Perona, ICCV 2017,
#: "Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation"; ``cocoeval.py``'s ``kpt_oks_sigmas``):
#: the standard deviation of human annotators' clicks for each keypoint, relative to the object scale.
COCO_PERSON_SIGMAS = (0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
                      0.107, 0.107, 0.087, 0.087, 0.089, 0.089)
#: left/right name prefixes whose keypoints a horizontal flip swaps (COCO's ``left_``, the figures' ``l_``).
SIDE_PREFIXES = (("left_", "right_"), ("l_", "r_"))


def _layout(root: Path, split: str) -> str:
    return f"expected {root}/annotations/person_keypoints_{split}.json and the images in {root}/{split}/"


# ----------------------------------------------------------------------------- writing


def to_coco_keypoints(keypoints: np.ndarray, height: int, width: int,
                      keypoint_names: tuple[str, ...] | list[str] = KEYPOINTS,
                      skeleton: tuple[tuple[int, int], ...] | list = SKELETON) -> dict:
    """A COCO person-keypoints dict for crops with keypoints (N,K,3) ``(x, y, v)``.

    One image per crop (id ``i + 1``, file ``<id, 6 digits>.png``, ``height`` x
    ``width``) and one annotation per crop (id ``i + 1``, category 1 "person",
    ``bbox`` the whole crop ``[0, 0, W, H]``, ``area`` W*H, ``iscrowd`` 0,
    ``keypoints`` flat ``[x1, y1, v1, ...]`` with unlabelled ones as 0, 0, 0,
    ``num_keypoints`` the labelled count). ``skeleton`` is 0-based here and
    1-based in the dict, as COCO stores it.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3 or keypoints.shape[1] != len(keypoint_names):
        raise ValueError(f"to_coco_keypoints: keypoints must be (N,{len(keypoint_names)},3), got {keypoints.shape}")
    images, annotations = [], []
    for i, kp in enumerate(keypoints):
        v = np.rint(kp[:, 2]).astype(np.int64)
        if v.min(initial=0) < 0 or v.max(initial=0) > 2:
            raise ValueError(f"to_coco_keypoints: crop {i} has visibility flags outside 0..2")
        flat = np.where((v > 0)[:, None], kp[:, :2], 0.0)
        images.append({"id": i + 1, "width": int(width), "height": int(height), "file_name": f"{i + 1:06d}.png"})
        annotations.append({
            "id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
            "keypoints": [c for (x, y), vis in zip(flat.tolist(), v.tolist(), strict=True) for c in (x, y, vis)],
            "num_keypoints": int((v > 0).sum()), "bbox": [0.0, 0.0, float(width), float(height)],
            "area": float(width * height),
        })
    categories = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(keypoint_names),
                   "skeleton": [[int(a) + 1, int(b) + 1] for a, b in skeleton]}]
    return {"info": {"description": "KDBench pose ground truth"}, "licenses": [],
            "images": images, "annotations": annotations, "categories": categories}


def write_crops_as_coco(images: np.ndarray, keypoints: np.ndarray, out_dir: str | Path, split: str,
                        keypoint_names: tuple[str, ...] | list[str] = KEYPOINTS,
                        skeleton: tuple[tuple[int, int], ...] | list = SKELETON) -> Path:
    """Write crops (N,3,H,W) uint8 as PNGs under ``out_dir/<split>/`` and their COCO JSON at
    ``out_dir/annotations/person_keypoints_<split>.json``; return ``out_dir``. Files are written atomically.
    """
    from PIL import Image

    out_dir = Path(out_dir)
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1] != 3 or len(images) != len(keypoints):
        raise ValueError(f"write_crops_as_coco: need images (N,3,H,W) and N keypoint rows, got {images.shape} "
                         f"and {len(keypoints)}")
    coco = to_coco_keypoints(keypoints, images.shape[2], images.shape[3], keypoint_names, skeleton)
    for image, entry in zip(images, coco["images"], strict=True):
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(buffer, format="PNG")
        atomic_write_bytes(out_dir / split / entry["file_name"], buffer.getvalue())
    atomic_write_text(out_dir / "annotations" / f"person_keypoints_{split}.json", json.dumps(coco))
    return out_dir


# ----------------------------------------------------------------------------- reading


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _keypoint_categories(data: dict, path: Path) -> dict[int, int]:
    """Category id -> number of keypoints K, for the categories that list ``keypoints``."""
    counts: dict[int, int] = {}
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not is_int(cat.get("id")):
            raise DataError(f"COCO keypoints file {path}: category entry #{i} has no integer 'id'")
        names = cat.get("keypoints")
        if isinstance(names, list) and names:
            counts[cat["id"]] = len(names)
    if not counts:
        raise DataError(f"COCO keypoints file {path}: no category lists 'keypoints' (not a person_keypoints file?)")
    if len(set(counts.values())) != 1:
        raise DataError(f"COCO keypoints file {path}: categories list different numbers of keypoints {counts}")
    return counts


def _check_annotation(ann: Any, index: int, path: Path, images: dict[int, dict], counts: dict[int, int],
                      seen: set) -> np.ndarray:
    """Validate one annotation; return its keypoints (K,3) float64 in image coordinates."""
    where, image = annotation_header(ann, index, path, images, seen, "COCO keypoints file")
    if ann.get("category_id") not in counts:
        raise DataError(f"{where} has category_id {ann.get('category_id')!r}, not a keypoint category "
                        f"(ids {sorted(counts)})")
    k = counts[ann["category_id"]]
    flat = ann.get("keypoints")
    if not isinstance(flat, list) or len(flat) != 3 * k:
        got = len(flat) if isinstance(flat, list) else type(flat).__name__
        raise DataError(f"{where}: 'keypoints' must be a list of 3*K = {3 * k} numbers (K = {k}), got {got}")
    if not all(_is_num(value) for value in flat):
        raise DataError(f"{where}: 'keypoints' holds a value that is not a finite number")
    kp = np.asarray(flat, dtype=np.float64).reshape(k, 3)
    bad = np.flatnonzero(~np.isin(kp[:, 2], (0, 1, 2)))
    if len(bad):
        raise DataError(f"{where}: keypoint {int(bad[0])} has visibility {kp[bad[0], 2]!r}, not 0, 1 or 2")
    width, height = image["width"], image["height"]
    tx, ty = KEYPOINT_TOLERANCE * width, KEYPOINT_TOLERANCE * height
    far = (kp[:, 2] > 0) & ((kp[:, 0] < -tx) | (kp[:, 0] > width + tx) | (kp[:, 1] < -ty) | (kp[:, 1] > height + ty))
    if far.any():
        j = int(np.flatnonzero(far)[0])
        raise DataError(f"{where}: labelled keypoint {j} at ({kp[j, 0]:g}, {kp[j, 1]:g}) lies more than "
                        f"{KEYPOINT_TOLERANCE:.0%} outside its image (image id {image['id']}, {width}x{height}, "
                        f"file {image['file_name']})")
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_num(v) for v in bbox) or min(bbox[2:]) <= 0:
        raise DataError(f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h] with w, h > 0, got {bbox!r}")
    return kp


def crop_box(bbox: list[float], height: int, width: int, padding: float = PADDING) -> tuple[float, float, float, float]:
    """The crop ``(x0, y0, x1, y1)`` of a COCO bbox ``[x, y, w, h]``: grown to aspect height:width, times padding."""
    x, y, w, h = (float(v) for v in bbox)
    cx, cy = x + w / 2, y + h / 2
    if w * height > h * width:
        h = w * height / width
    else:
        w = h * width / height
    w, h = w * padding, h * padding
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _crop(image: np.ndarray, box: tuple[float, float, float, float], height: int, width: int) -> np.ndarray:
    """Cut ``box`` out of an (H,W,3) uint8 image (black beyond it) and resize it to (3,height,width)."""
    from PIL import Image

    x0, y0, x1, y1 = box
    ix0, iy0, ix1, iy1 = math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)
    ih, iw = image.shape[:2]
    if (ix0, iy0, ix1, iy1) == (0, 0, iw, ih):
        window = image
    else:
        window = np.zeros((iy1 - iy0, ix1 - ix0, 3), dtype=np.uint8)
        sx0, sy0, sx1, sy1 = max(ix0, 0), max(iy0, 0), min(ix1, iw), min(iy1, ih)
        if sx1 > sx0 and sy1 > sy0:
            window[sy0 - iy0 : sy1 - iy0, sx0 - ix0 : sx1 - ix0] = image[sy0:sy1, sx0:sx1]
    out = Image.fromarray(np.ascontiguousarray(window)).resize(
        (width, height), Image.Resampling.BILINEAR, box=(x0 - ix0, y0 - iy0, x1 - ix0, y1 - iy0))
    return np.asarray(out, dtype=np.uint8).transpose(2, 0, 1)


def _read_image(path: Path, entry: dict, ann_id: int, annotation_file: Path) -> np.ndarray:
    """One image as RGB uint8 (H,W,3), checked against its entry's width and height."""
    from PIL import Image

    if not path.is_file():
        raise DataError(f"image file {path} (image id {entry['id']}, annotation id {ann_id} in {annotation_file}) "
                        f"does not exist; {LAYOUT}")
    try:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError, ValueError, DecompressionBombError, ...
        raise DataError(f"cannot read image {path} (annotation id {ann_id} in {annotation_file}): "
                        f"{type(exc).__name__}: {exc}") from exc
    if rgb.shape[:2] != (entry["height"], entry["width"]):
        raise DataError(f"image {path} is {rgb.shape[1]}x{rgb.shape[0]} but {annotation_file} gives image id "
                        f"{entry['id']} as {entry['width']}x{entry['height']}")
    return rgb


def load_coco_keypoints(annotation_file: str | Path, image_dir: str | Path, height: int = 64, width: int = 48,
                        padding: float = PADDING) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a COCO ``person_keypoints_*.json`` and its images as top-down crops.

    Returns ``(crops uint8 (N,3,height,width), keypoints float32 (N,K,3) in crop
    coordinates, coco)``, one crop per non-crowd annotation (see the module
    docstring). ``coco`` is a person-keypoints dict for evaluation in crop
    coordinates: one image (id ``i + 1``) and one annotation (id ``i + 1``) per
    crop, with the crop's keypoints, the bbox and ``area`` mapped into the crop
    (``area`` scaled by the crop's zoom, so OKS keeps the person's scale), and
    ``source_image_id`` / ``source_annotation_id`` naming the original.
    """
    annotation_file, image_dir = Path(annotation_file), Path(image_dir)
    if not annotation_file.is_file():
        raise DataError(f"COCO keypoints file {annotation_file} does not exist; {LAYOUT}")
    if not image_dir.is_dir():
        raise DataError(f"COCO image folder {image_dir} does not exist; {LAYOUT}")
    if not (padding > 0 and height > 0 and width > 0):
        raise DataError(f"load_coco_keypoints: need padding, height and width > 0, got {padding}, {height}, {width}")
    data = read_coco_json(annotation_file, "COCO keypoints file")
    counts = _keypoint_categories(data, annotation_file)
    entries = image_entries(data, annotation_file, "COCO keypoints file")
    per_image: dict[int, list[tuple[dict, np.ndarray]]] = {image_id: [] for image_id in entries}
    seen: set = set()
    for index, ann in enumerate(data["annotations"]):
        kp = _check_annotation(ann, index, annotation_file, entries, counts, seen)
        if not ann.get("iscrowd", 0):
            per_image[ann["image_id"]].append((ann, kp))

    k = next(iter(counts.values()))
    crops, keypoints, images, annotations = [], [], [], []
    for image_id, entry in entries.items():
        if not per_image[image_id]:
            continue
        rgb = _read_image(image_dir / entry["file_name"], entry, per_image[image_id][0][0]["id"], annotation_file)
        for ann, kp in per_image[image_id]:
            x0, y0, x1, y1 = crop_box(ann["bbox"], height, width, padding)
            sx, sy = width / (x1 - x0), height / (y1 - y0)
            crops.append(_crop(rgb, (x0, y0, x1, y1), height, width))
            out = np.zeros((k, 3), dtype=np.float64)
            out[:, 0], out[:, 1] = (kp[:, 0] - x0) * sx, (kp[:, 1] - y0) * sy
            inside = (kp[:, 2] > 0) & (out[:, 0] >= 0) & (out[:, 0] < width) & (out[:, 1] >= 0) & (out[:, 1] < height)
            out[:, 2] = np.where(inside, kp[:, 2], 0)
            out[~inside, :2] = 0.0
            keypoints.append(out.astype(np.float32))
            i = len(images) + 1
            bx, by, bw, bh = (float(v) for v in ann["bbox"])
            area = float(ann["area"]) if _is_num(ann.get("area")) else bw * bh
            images.append({"id": i, "width": width, "height": height,
                           "file_name": f"{entry['file_name']}#{ann['id']}"})
            annotations.append({
                "id": i, "image_id": i, "category_id": 1, "iscrowd": 0,
                "keypoints": [c for row in keypoints[-1].tolist() for c in (row[0], row[1], int(row[2]))],
                "num_keypoints": int(inside.sum()),
                "bbox": [(bx - x0) * sx, (by - y0) * sy, bw * sx, bh * sy], "area": area * sx * sy,
                "source_image_id": image_id, "source_annotation_id": ann["id"],
            })
    person = next(cat for cat in data["categories"] if cat.get("id") in counts)
    coco = {"info": {"description": f"top-down crops of {annotation_file.name}"}, "licenses": [],
            "images": images, "annotations": annotations, "categories": [{**person, "id": 1}]}
    crops_arr = np.stack(crops) if crops else np.zeros((0, 3, height, width), dtype=np.uint8)
    kp_arr = np.stack(keypoints) if keypoints else np.zeros((0, k, 3), dtype=np.float32)
    return crops_arr, kp_arr, coco


def annotation_path(root: str | Path, split: str) -> Path:
    """``<root>/annotations/person_keypoints_<split>.json``, the annotation file of ``split``."""
    return Path(root) / "annotations" / f"person_keypoints_{split}.json"


def load_coco_keypoints_root(root: str | Path, split: str, height: int = 64, width: int = 48,
                             padding: float = PADDING) -> tuple[np.ndarray, np.ndarray, dict]:
    """:func:`load_coco_keypoints` of ``<root>/annotations/person_keypoints_<split>.json`` and ``<root>/<split>/``."""
    root = Path(root)
    annotation_file = annotation_path(root, split)
    image_dir = root / split
    if not annotation_file.is_file():
        raise DataError(f"COCO keypoints file {annotation_file} does not exist; {_layout(root, split)}")
    if not image_dir.is_dir():
        raise DataError(f"COCO image folder {image_dir} does not exist; {_layout(root, split)}")
    return load_coco_keypoints(annotation_file, image_dir, height, width, padding)


# ----------------------------------------------------------------------------- keypoint metadata


def keypoint_sigmas(category: dict, path: str | Path) -> tuple[float, ...]:
    """The OKS sigmas of a keypoint ``category`` of the file ``path``, one per keypoint.

    OKS (COCO's keypoint similarity) needs a falloff sigma per keypoint, which a COCO file does
    not carry. In order: the category's own ``"sigmas"`` list (a KDBench extension: K finite
    numbers > 0); COCO's published sigmas when the keypoints are COCO's 17 person keypoints in
    COCO's order; the generated figures' sigmas when they are the figures' 14 keypoints. Any other
    keypoint set raises :class:`DataError` naming the file and its keypoints: guessed sigmas would
    make AP numbers that compare with nothing.
    """
    names = tuple(category.get("keypoints") or ())
    given = category.get("sigmas")
    if given is not None:
        if not (isinstance(given, list) and len(given) == len(names) and all(_is_num(v) and v > 0 for v in given)):
            raise DataError(f"COCO keypoints file {path}: category {category.get('name')!r} has 'sigmas' {given!r}; "
                            f"need {len(names)} finite numbers > 0, one per keypoint")
        return tuple(float(v) for v in given)
    for known, sigmas in ((COCO_PERSON_KEYPOINTS, COCO_PERSON_SIGMAS), (KEYPOINTS, SIGMAS)):
        if names == known:
            return sigmas
    raise DataError(f"COCO keypoints file {path}: no OKS sigmas known for the keypoints of category "
                    f"{category.get('name')!r} ({', '.join(names)}); they are known for COCO's 17 person keypoints "
                    f"and the generated figures' 14; add a 'sigmas' list (one number > 0 per keypoint) to the category")


def flip_pairs(names: tuple[str, ...] | list[str], path: str | Path) -> tuple[tuple[int, int], ...]:
    """Index pairs ``(left, right)`` a horizontal flip swaps: each ``left_X`` with ``right_X`` (or
    ``l_X`` with ``r_X``). A side without its partner raises :class:`DataError` naming the file: the
    flip augmentation would turn that keypoint's label to the wrong side."""
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for name, i in index.items():
        for left, right in SIDE_PREFIXES:
            for mine, other in ((left, right), (right, left)):
                if name.startswith(mine) and other + name[len(mine):] not in index:
                    raise DataError(f"COCO keypoints file {path}: keypoint {name!r} has no mirror "
                                    f"{other + name[len(mine):]!r}; a horizontal flip needs both sides")
            if name.startswith(left):
                pairs.append((i, index[right + name[len(left):]]))
    return tuple(pairs)
