"""Writers of tiny real-format datasets for the tests: files laid out and encoded as the official
downloads are (CIFAR python-version pickles with bytes keys, ImageFolder / ImageNet trees of images).

Shared by the loader tests and the end-to-end runs so that every test reads the same formats; each
writer returns what a test needs to check the loader against (folders, labels, rows).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.registry import MODELS

C10_NAMES = [f"c10_{i}" for i in range(10)]
C100_NAMES = [f"fine{i:02d}" for i in range(100)]
#: (height, width) of the images :func:`write_imagenet` writes by default, in turn
IMAGENET_SIZES = ((40, 56), (48, 36), (33, 33))


def dump_pickle(path: Path, obj: object) -> None:
    """Pickle ``obj`` at protocol 2, as the official python-version CIFAR files are written."""
    path.write_bytes(pickle.dumps(obj, protocol=2))


def tagged_rows(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random CIFAR rows (N,3072) whose first two bytes (red channel, y=0, x=0 and x=1) encode ``ids``."""
    rows = rng.integers(0, 256, size=(len(ids), 3072), dtype=np.uint8)
    rows[:, 0], rows[:, 1] = ids // 256, ids % 256
    return rows


def read_ids(inputs: torch.Tensor) -> list[int]:
    """The ids :func:`tagged_rows` wrote into images (N,3,32,32)."""
    return (inputs[:, 0, 0, 0].long() * 256 + inputs[:, 0, 0, 1].long()).tolist()


def make_cifar10(parent: Path, per_class_per_batch: int = 2) -> tuple[Path, np.ndarray, np.ndarray]:
    """Write a CIFAR-10 python-version folder; return (folder, train labels, test rows)."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels_all = []
    for b in range(5):
        labels = np.tile(np.arange(10), per_class_per_batch)
        rng.shuffle(labels)
        ids = np.arange(len(labels)) + b * len(labels)
        dump_pickle(folder / f"data_batch_{b + 1}", {
            b"batch_label": f"training batch {b + 1} of 5".encode(),
            b"labels": labels.tolist(), b"data": tagged_rows(ids, rng), b"filenames": [b"x.png"] * len(labels),
        })
        labels_all.append(labels)
    test_rows = rng.integers(0, 256, size=(7, 3072), dtype=np.uint8)
    test_rows[3, 2 * 1024 + 5 * 32 + 7] = 201  # blue channel, y=5, x=7
    test_rows[3, 0 * 1024 + 5 * 32 + 7] = 13  # red channel, same pixel
    dump_pickle(folder / "test_batch", {b"labels": [0, 1, 2, 9, 4, 5, 6], b"data": test_rows})
    dump_pickle(folder / "batches.meta", {b"label_names": [n.encode() for n in C10_NAMES], b"num_vis": 3072})
    return folder, np.concatenate(labels_all), test_rows


def write_cifar100(parent: Path, train_per_class: int = 3, test_labels: list[int] | None = None, seed: int = 1,
                   test_per_class: int = 1) -> tuple[Path, np.ndarray]:
    """A ``cifar-100-python`` folder as the official archive unpacks it: ``train``, ``test`` and ``meta``
    with bytes keys (``fine_labels``, ``coarse_labels``, ``data`` rows of 3072 bytes, ``filenames``,
    ``batch_label``; ``fine_label_names``, ``coarse_label_names``). Images are class-sorted,
    ``train_per_class`` / ``test_per_class`` per class (or the test labels ``test_labels``); training
    images are tagged with their index (:func:`read_ids`). Returns the folder and the test rows."""
    folder = parent / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    fine = np.repeat(np.arange(100), train_per_class)
    test_fine = np.repeat(np.arange(100), test_per_class) if test_labels is None else np.asarray(test_labels)
    test_rows = rng.integers(0, 256, size=(len(test_fine), 3072), dtype=np.uint8)
    for name, labels, rows in (("train", fine, tagged_rows(np.arange(len(fine)), rng)), ("test", test_fine, test_rows)):
        dump_pickle(folder / name, {
            b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))], b"batch_label": name.encode(),
            b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 5).tolist(), b"data": rows})
    dump_pickle(folder / "meta", {b"fine_label_names": [n.encode() for n in C100_NAMES],
                                  b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]})
    return folder, test_rows


def write_png(path: Path, color: tuple[int, int, int], size: int = 32, mode: str = "RGB",
              dot: tuple[int, int, tuple[int, int, int]] | None = None) -> None:
    """A ``size`` x ``size`` image of one colour (with one ``dot`` pixel), saved in ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (size, size), color)
    if dot is not None:
        x, y, c = dot
        img.putpixel((x, y), c)
    img.convert(mode).save(path)


def make_image_folder(root: Path, with_val: bool = False) -> None:
    """An ImageFolder tree: 3 classes of 5 one-colour PNGs in train, 2 test images (one grayscale, 16x16)."""
    for cls, color in (("cat", (200, 10, 10)), ("dog", (10, 200, 10)), ("eel", (10, 10, 200))):
        for i in range(5):
            write_png(root / "train" / cls / f"{i:02d}.png", color)
    write_png(root / "test" / "dog" / "a.png", (1, 2, 3), dot=(7, 5, (10, 20, 30)))
    write_png(root / "test" / "cat" / "b.png", (128, 128, 128), size=16, mode="L")  # grayscale, other size
    (root / "test" / "cat" / "notes.txt").write_text("not an image")  # ignored
    if with_val:
        write_png(root / "val" / "eel" / "v.png", (5, 5, 5))


def write_imagenet(root: Path, classes: int = 3, train_per_class: int = 4, val_per_class: int = 2,
                   size: int | None = None, seed: int = 0) -> Path:
    """An ImageNet tree as torchvision's ImageFolder reads it: ``train/<wnid>/<wnid>_<n>.JPEG`` and
    ``val/<wnid>/ILSVRC2012_val_<n>.JPEG`` of random JPEGs, ``size`` x ``size + 8`` pixels, or of the
    varying sizes of :data:`IMAGENET_SIZES` in turn when ``size`` is None."""
    rng = np.random.default_rng(seed)
    count = 0
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(classes):
            wnid = f"n{1440764 + c:08d}"
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(per_class):
                h, w = (size, size + 8) if size else IMAGENET_SIZES[count % len(IMAGENET_SIZES)]
                count += 1
                pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                name = f"{wnid}_{i}.JPEG" if split == "train" else f"ILSVRC2012_val_{count:08d}.JPEG"
                Image.fromarray(pixels).save(folder / name, quality=90)
    return root


def read_all(split) -> torch.Tensor:
    """Every image of a streamed split, read and stacked (fixtures only: all images of one size)."""
    return torch.stack([split.read(i) for i in range(len(split))])


def small_cifar100(root: Path, train: int = 32, test: int = 16) -> Path:
    """The official-format CIFAR-100 fixture (tests/real_formats.py) with its training file cut to the
    first ``train`` images (classes 0..train-1) and ``test`` test images: the smallest set that runs a
    few steps of each smoke variant."""
    folder, _ = write_cifar100(root, train_per_class=1, test_labels=list(range(test)))
    with open(folder / "train", "rb") as f:
        content = pickle.load(f, encoding="bytes")
    dump_pickle(folder / "train", {k: v[:train] if k != b"batch_label" else v for k, v in content.items()})
    return root


def reference_checkpoint(path: Path, model: str, num_classes: int = 100) -> Path:
    """A teacher file as RepDistiller's train_teacher.py saves it: ``{"model": state_dict, ...}``."""
    torch.manual_seed(0)
    torch.save({"model": MODELS.get(model)(num_classes=num_classes).state_dict(), "epoch": 240}, path)
    return path
