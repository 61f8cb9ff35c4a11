"""Segmentation data on disk: generated scenes as PNG folders, and the Cityscapes and Pascal VOC layouts.

Generated scenes (:func:`write_scenes`, :func:`read_folder`)::

    <out_dir>/images/<split>/000000.png     RGB image
    <out_dir>/labels/<split>/000000.png     8-bit single-channel label map (class ids, 255 = ignore)

Cityscapes (:func:`load_cityscapes`; the ``*_labelTrainIds.png`` files are made
by cityscapesscripts' ``createTrainIdLabelImgs``)::

    <root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<name>_gtFine_labelTrainIds.png     ids 0..18, 255 = ignore

Pascal VOC (:func:`load_voc`)::

    <root>/ImageSets/Segmentation/<split>.txt     one image id per line
    <root>/JPEGImages/<id>.jpg
    <root>/SegmentationClass/<id>.png             palette PNG: ids 0..20, 255 = border/ignore

Every loader returns RGB uint8 images (3,H,W) and uint8 label maps (H,W) at
their own sizes. Label maps are read as stored values: for a palette ('P')
PNG those are the palette indices, not the colours they are drawn with; an
RGB label map is an error. Each image/label pair goes through one check
(:func:`_read_pair`): sizes must match, and every id must be in the dataset's
range or 255. Anything missing or malformed raises :class:`DataError` naming
the file (and, for a missing one, the expected layout).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bench.errors import DataError
from bench.paths import atomic_write_bytes
from tasks.segmentation.scenes import CLASSES, IGNORE_INDEX

CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
#: label modes accepted: 8-bit grey and 8-bit palette (indices).
_LABEL_MODES = ("L", "P")
_MAX_LISTED_IDS = 10


def _folder_layout(out_dir: Path, split: str) -> str:
    return (f"expected layout: {out_dir}/images/{split}/<i>.png (RGB) and {out_dir}/labels/{split}/<i>.png "
            "(8-bit label map, same name)")


def _cityscapes_layout(root: Path, split: str) -> str:
    return (f"expected layout: {root}/leftImg8bit/{split}/<city>/<name>_leftImg8bit.png and "
            f"{root}/gtFine/{split}/<city>/<name>_gtFine_labelTrainIds.png (made by cityscapesscripts' "
            "createTrainIdLabelImgs)")


def _voc_layout(root: Path, split: str) -> str:
    return (f"expected layout: {root}/ImageSets/Segmentation/{split}.txt (one id a line), "
            f"{root}/JPEGImages/<id>.jpg and {root}/SegmentationClass/<id>.png (palette PNG)")


def _require(path: Path, what: str, layout: str, folder: bool = False) -> Path:
    """``path`` if it is an existing folder (``folder``) or file, else a DataError naming it and the layout."""
    if not (path.is_dir() if folder else path.is_file()):
        raise DataError(f"{what} {path} does not exist; {layout}")
    return path


# ----------------------------------------------------------------------------- writing


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_scenes(images: np.ndarray, labels: np.ndarray, out_dir: str | Path, split: str) -> Path:
    """Write images (N,3,H,W) uint8 and label maps (N,H,W) uint8 as PNGs in the folder layout; return ``out_dir``.

    Sample ``i`` goes to ``images/<split>/<i:06d>.png`` and ``labels/<split>/<i:06d>.png``;
    every file is written atomically.
    """
    out_dir = Path(out_dir)
    if len(images) != len(labels):
        raise ValueError(f"write_scenes: {len(images)} images but {len(labels)} label maps")
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        image, label = np.asarray(image), np.asarray(label)
        if image.dtype != np.uint8 or label.dtype != np.uint8:
            raise ValueError(f"write_scenes: sample {i} must be uint8, got {image.dtype} and {label.dtype}")
        if image.ndim != 3 or image.shape[0] != 3 or label.shape != image.shape[1:]:
            raise ValueError(f"write_scenes: sample {i} needs an image (3,H,W) and a label map (H,W), "
                             f"got {image.shape} and {label.shape}")
        name = f"{i:06d}.png"
        atomic_write_bytes(out_dir / "images" / split / name, _png(image.transpose(1, 2, 0)))
        atomic_write_bytes(out_dir / "labels" / split / name, _png(label))
    return out_dir


# ----------------------------------------------------------------------------- reading


def _read_pair(image_path: Path, label_path: Path, num_classes: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """One checked sample: RGB uint8 (3,H,W) and label map uint8 (H,W) with ids in 0..num_classes-1 or 255."""
    from PIL import Image

    _require(image_path, "image file", layout)
    if not label_path.is_file():
        raise DataError(f"label map {label_path} (for image {image_path}) does not exist; {layout}")
    try:
        with Image.open(image_path) as img:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError, ValueError, DecompressionBombError, ...
        raise DataError(f"cannot read image {image_path}: {type(exc).__name__}: {exc}") from exc
    try:
        with Image.open(label_path) as img:
            mode = img.mode
            label = np.asarray(img, dtype=np.uint8) if mode in _LABEL_MODES else None
    except Exception as exc:
        raise DataError(f"cannot read label map {label_path}: {type(exc).__name__}: {exc}") from exc
    if label is None:
        raise DataError(f"label map {label_path} has PIL mode {mode!r}; a label map must be a single-channel 8-bit "
                        f"PNG (mode 'L', or 'P' read as palette indices), not colours")
    if label.shape != rgb.shape[:2]:
        raise DataError(f"label map {label_path} is {label.shape[1]}x{label.shape[0]} (WxH) but its image "
                        f"{image_path} is {rgb.shape[1]}x{rgb.shape[0]}")
    ids = np.unique(label)
    bad = ids[(ids >= num_classes) & (ids != IGNORE_INDEX)]
    if len(bad):
        listed = ", ".join(str(int(v)) for v in bad[:_MAX_LISTED_IDS]) + (", ..." if len(bad) > _MAX_LISTED_IDS else "")
        raise DataError(f"label map {label_path} holds class id(s) {listed} outside 0..{num_classes - 1} "
                        f"(and {IGNORE_INDEX} = ignore)")
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)), np.ascontiguousarray(label)


def read_folder(out_dir: str | Path, split: str, num_classes: int = len(CLASSES)
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Read the folder layout :func:`write_scenes` writes: ``(images (3,H,W), labels (H,W))`` in file-name order.

    ``num_classes`` is the id range labels must lie in (besides 255); it defaults
    to the generated scenes' classes.
    """
    out_dir = Path(out_dir)
    layout = _folder_layout(out_dir, split)
    image_dir = _require(out_dir / "images" / split, "image folder", layout, folder=True)
    label_dir = _require(out_dir / "labels" / split, "label folder", layout, folder=True)
    image_paths = sorted(image_dir.glob("*.png"))
    if not image_paths:
        raise DataError(f"image folder {image_dir} holds no .png files; {layout}")
    orphans = sorted({p.name for p in label_dir.glob("*.png")} - {p.name for p in image_paths})
    if orphans:
        raise DataError(f"label map {label_dir / orphans[0]} has no image {image_dir / orphans[0]}"
                        + (f" ({len(orphans)} such label maps)" if len(orphans) > 1 else "") + f"; {layout}")
    images, labels = [], []
    for path in image_paths:
        image, label = _read_pair(path, label_dir / path.name, num_classes, layout)
        images.append(image)
        labels.append(label)
    return images, labels


def load_cityscapes(root: str | Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Cityscapes fine annotations in train ids: ``(images, labels, file names)``.

    Cities and files are read in sorted order; file names are the image paths
    relative to ``leftImg8bit/<split>/`` (``<city>/<name>_leftImg8bit.png``).
    Labels are ids 0..18 (:data:`CITYSCAPES_CLASSES`) and 255.
    """
    root = Path(root)
    layout = _cityscapes_layout(root, split)
    image_root = _require(root / "leftImg8bit" / split, "Cityscapes image folder", layout, folder=True)
    label_root = _require(root / "gtFine" / split, "Cityscapes label folder", layout, folder=True)
    suffix = "_leftImg8bit.png"
    image_paths = sorted(p for city in image_root.iterdir() if city.is_dir() for p in city.glob(f"*{suffix}"))
    if not image_paths:
        raise DataError(f"Cityscapes image folder {image_root} holds no <city>/*{suffix} files; {layout}")
    images, labels, names = [], [], []
    for path in image_paths:
        city, stem = path.parent.name, path.name[: -len(suffix)]
        label_path = label_root / city / f"{stem}_gtFine_labelTrainIds.png"
        image, label = _read_pair(path, label_path, len(CITYSCAPES_CLASSES), layout)
        images.append(image)
        labels.append(label)
        names.append(f"{city}/{path.name}")
    return images, labels, names


def load_voc(root: str | Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Pascal VOC segmentation: ``(images, labels, file names)`` in the order of ``<split>.txt``.

    File names are the JPEG names (``<id>.jpg``). Labels are the palette
    indices of ``SegmentationClass/<id>.png``: ids 0..20 (:data:`VOC_CLASSES`)
    and 255 (the border VOC leaves unlabelled).
    """
    root = Path(root)
    layout = _voc_layout(root, split)
    list_file = _require(root / "ImageSets" / "Segmentation" / f"{split}.txt", "VOC split list", layout)
    _require(root / "JPEGImages", "VOC image folder", layout, folder=True)
    _require(root / "SegmentationClass", "VOC label folder", layout, folder=True)
    try:
        ids = [line.strip() for line in list_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read VOC split list {list_file}: {type(exc).__name__}: {exc}") from exc
    if not ids:
        raise DataError(f"VOC split list {list_file} lists no image ids; {layout}")
    images, labels, names = [], [], []
    for image_id in ids:
        image_path = root / "JPEGImages" / f"{image_id}.jpg"
        image, label = _read_pair(image_path, root / "SegmentationClass" / f"{image_id}.png", len(VOC_CLASSES),
                                  f"{layout}; id {image_id!r} is listed in {list_file}")
        images.append(image)
        labels.append(label)
        names.append(image_path.name)
    return images, labels, names
