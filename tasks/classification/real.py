"""Adapters that read real classification datasets from disk into :class:`Split`s.

Two layouts are supported, both as the public downloads ship them:

* CIFAR-10 / CIFAR-100, "python version" (pickled batches), via :func:`load_cifar`; the
  pickles are read by a restricted unpickler (:class:`_CifarUnpickler`) that builds only the
  types the official files hold, so a crafted file cannot run code;
* a torchvision ``ImageFolder`` tree ``root/{train,val,test}/<class>/<images>``,
  via :func:`load_image_folder`, read lazily (:class:`~bench.streaming.StreamingSplit`:
  the file list is scanned now, each image is decoded when a batch needs it).

Every loader returns ``{"train", "val", "test"}`` with int64 targets; CIFAR
holds uint8 images (N,3,32,32) in memory, an ImageFolder split reads uint8
(3,H,W) images one by one. When a dataset has no official validation set, ``val`` is
carved out of the training set by :func:`_carve_val`: per class, the *last*
``round(n_c * val_fraction)`` samples in file order (at most ``n_c - 1``, so
every class keeps a training sample). The rule uses no randomness, so the split
is the same on every machine, and it is class-stratified, so val has the class
balance of train. ``val_fraction=0`` trains on the whole training set, as the
published CIFAR recipes do, and leaves ``val`` empty. Problems with the files
raise :class:`DataError` naming the path and the layout that was expected (an
unreadable image of a streamed split: when it is read).
"""

from __future__ import annotations

import pickle
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import ConfigError, DataError
from bench.streaming import StreamingSplit
from bench.task import Split

_CIFAR = {
    10: {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": "test_batch",
        "meta": "batches.meta",
        "names_key": "label_names",
        "labels_key": "labels",
        "layout": "data_batch_1..5, test_batch, batches.meta",
    },
    100: {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": "test",
        "meta": "meta",
        "names_key": "fine_label_names",
        "labels_key": "fine_labels",
        "layout": "train, test, meta",
    },
}
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
AnySplit = Split | StreamingSplit
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _check_fraction(val_fraction: float) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"dataset key 'val_fraction' must be in [0, 1) (0: train on the whole training set, "
                          f"val empty), got {val_fraction!r}")


def _carve_val(train: AnySplit, val_fraction: float) -> tuple[AnySplit, AnySplit]:
    """Split ``train`` into (train, val): per class, the last ``round(n_c * val_fraction)``
    samples in file order go to val (at most ``n_c - 1``); both keep file order.

    Deterministic and stratified, so every run and every machine sees the same
    held-out set with the training set's class balance.
    """
    targets = train.targets.numpy()
    is_val = np.zeros(len(targets), dtype=bool)
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        n_val = min(int(len(idx) * val_fraction + 0.5), len(idx) - 1)
        if n_val > 0:
            is_val[idx[len(idx) - n_val :]] = True

    def take(mask: np.ndarray, name: str) -> AnySplit:
        sel = torch.from_numpy(np.flatnonzero(mask))
        if isinstance(train, StreamingSplit):
            return train.subset(sel, f"{train.source} [{name}]")
        return Split(train.inputs[sel], train.targets[sel], train.classes, f"{train.source} [{name}]")

    if val_fraction == 0:
        return take(~is_val, "all of train"), take(is_val, "empty: val_fraction 0")
    return take(~is_val, f"train minus last {val_fraction:g} of each class"), take(
        is_val, f"last {val_fraction:g} of each class of train"
    )


# ----------------------------------------------------------------------------- CIFAR


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 pickles ``bytes`` at protocols 0-2: only the latin-1 form."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} (only latin1 is allowed)")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The globals a pickled numpy array names: the reconstructor (``_reconstruct``, or ``_frombuffer``
    at protocol 5), ``ndarray`` and ``dtype``, under numpy 1's (``numpy.core``, as in the official
    python2/3 CIFAR files) and numpy 2's (``numpy._core``) module names. Each name resolves to the
    object this numpy pickles with, so no module is imported by name."""
    reconstruct = np.zeros(0).__reduce__()[0]
    frombuffer = np.zeros(0).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what the official CIFAR files hold: dicts, lists, tuples,
    bytes, str, numbers and numpy arrays. Any other global (``os.system``, a class to instantiate)
    is refused before it is called, so a crafted ``data_batch_1`` cannot run code."""

    ALLOWED = {**_numpy_globals(), ("_codecs", "encode"): _latin1_encode}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _RefusedGlobal(f"persistent id {pid!r}")


class _RefusedGlobal(pickle.UnpicklingError):
    """A CIFAR pickle named a type or function outside :attr:`_CifarUnpickler.ALLOWED`."""


def _read_pickle(path: Path) -> dict[Any, Any]:
    """Unpickle one CIFAR file (byte keys) with :class:`_CifarUnpickler`, turning any failure into a
    DataError naming the file (and, for a refused type, the type): no code in the file is run."""
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="bytes").load()
    except _RefusedGlobal as exc:
        raise DataError(f"CIFAR file {path} refers to {exc}, which the official CIFAR files never contain; "
                        "refused to load it (allowed: dicts, lists, bytes, str, numbers, numpy arrays)") from None
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise DataError(f"cannot read CIFAR file {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataError(f"CIFAR file {path} holds a {type(obj).__name__}, not a dict")
    return obj


def _field(obj: dict[Any, Any], key: str, path: Path) -> Any:
    """``obj[b"key"]`` (as the official pickles have it), or ``obj["key"]``."""
    for k in (key.encode(), key):
        if k in obj:
            return obj[k]
    raise DataError(f"CIFAR file {path} has no key {key!r}")


def _read_cifar_batches(
    paths: list[Path], labels_key: str, classes: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate batches into uint8 images (N,3,32,32) and int64 labels (N,).

    Each row of ``data`` is 3072 bytes, channel-major: 1024 red, then green,
    then blue, each row-major over 32x32.
    """
    images, labels = [], []
    for path in paths:
        obj = _read_pickle(path)
        data = np.asarray(_field(obj, "data", path), dtype=np.uint8)
        y = np.asarray(_field(obj, labels_key, path), dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(y):
            raise DataError(
                f"CIFAR file {path}: 'data' has shape {data.shape} and {len(y)} labels; "
                "expected (N, 3072) and N labels"
            )
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise DataError(f"CIFAR file {path}: labels outside 0..{len(classes) - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(y)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def load_cifar(root: str | Path, num_classes: int = 10, val_fraction: float = 0.1) -> dict[str, Split]:
    """Read CIFAR-10 or CIFAR-100 (python version) into ``{"train", "val", "test"}``.

    ``root`` is the folder that contains ``cifar-10-batches-py`` /
    ``cifar-100-python`` or that folder itself. ``test`` is the official test
    set; ``val`` is held out of the official training set (see the module
    docstring) so that test stays untouched for the final number; ``val_fraction=0``
    trains on all 50000 images, as the published tables do, and leaves ``val`` empty.
    """
    if num_classes not in _CIFAR:
        raise ConfigError(f"num_classes must be 10 or 100 for CIFAR, got {num_classes!r}")
    _check_fraction(val_fraction)
    spec = _CIFAR[num_classes]
    root = Path(root)
    if root.name == spec["folder"] or (root / spec["meta"]).is_file():
        folder = root
    else:
        folder = root / spec["folder"]
    expected = (
        f"expected {folder}/{spec['layout']} "
        f"(CIFAR-{num_classes} python version from {_CIFAR_URL}); root may also be that folder itself"
    )
    if not folder.is_dir():
        raise DataError(f"CIFAR-{num_classes}: folder {folder} does not exist; {expected}")
    for name in [*spec["train"], spec["test"], spec["meta"]]:
        if not (folder / name).is_file():
            raise DataError(f"CIFAR-{num_classes}: missing {folder / name}; {expected}")

    meta_path = folder / spec["meta"]
    names = _field(_read_pickle(meta_path), spec["names_key"], meta_path)
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    if len(classes) != num_classes:
        raise DataError(f"CIFAR file {meta_path} lists {len(classes)} classes, expected {num_classes}")

    x, y = _read_cifar_batches([folder / n for n in spec["train"]], spec["labels_key"], classes)
    train, val = _carve_val(Split(x, y, classes, f"cifar{num_classes}:{folder}"), val_fraction)
    x, y = _read_cifar_batches([folder / spec["test"]], spec["labels_key"], classes)
    return {"train": train, "val": val, "test": Split(x, y, classes, f"cifar{num_classes}:{folder / spec['test']}")}


# ----------------------------------------------------------------------------- ImageFolder


def read_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """One image file as uint8 (3, H, W): RGB, bilinear-resized to ``size`` x ``size`` unless ``size`` is
    None; a file PIL cannot read raises :class:`DataError` naming it. The reader of streamed splits."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
            if size is not None:
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            pixels = np.asarray(rgb, dtype=np.uint8)
    except Exception as exc:  # PIL raises OSError, ValueError, DecompressionBombError, ...
        raise DataError(f"cannot read image {path}: {type(exc).__name__}: {exc}") from None
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def require_folders(root: Path, names: tuple[str, ...], dataset: str, expected: str) -> None:
    """Raise :class:`DataError` naming the path and the expected layout unless ``root`` and each of its
    subfolders ``names`` exist (the checks every folder-tree loader starts with)."""
    if not root.is_dir():
        raise DataError(f"{dataset} root {root} does not exist; {expected}")
    for name in names:
        if not (root / name).is_dir():
            raise DataError(f"{dataset}: missing folder {root / name}; {expected}")


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_split_folder(folder: Path, classes: tuple[str, ...], size: int | None, every_class: bool,
                      kind: str = "imagefolder") -> StreamingSplit:
    """The images under ``folder/<class>/``, ordered by class then file name, as a streamed split
    (no image is opened here; :func:`read_image` reads each when needed).

    ``every_class``: each class folder must hold an image (the training set, so
    that no class goes unseen). ``size=None`` keeps each image's own size.
    """
    index = {c: i for i, c in enumerate(classes)}
    files: list[str] = []
    labels: list[int] = []
    for class_dir in _class_dirs(folder):
        if class_dir.name not in index:
            raise DataError(
                f"class folder {class_dir} is not a class of the training set "
                f"({folder.parent / 'train'}); known classes: {_preview(classes)}"
            )
        found = _image_files(class_dir)
        if every_class and not found:
            raise DataError(f"training class folder {class_dir} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        files += [str(p) for p in found]
        labels += [index[class_dir.name]] * len(found)
    if not files:
        raise DataError(
            f"no images in {folder}; expected {folder}/<class>/<image files> ({', '.join(IMAGE_EXTENSIONS)})"
        )
    return StreamingSplit(tuple(files), torch.tensor(labels, dtype=torch.int64), classes,
                          partial(read_image, size=size), f"{kind}:{folder}", {"sizes_vary": size is None})


def _preview(names: tuple[str, ...], shown: int = 20) -> str:
    """The first ``shown`` class names (ImageNet has 1000)."""
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def load_image_folder(root: str | Path, size: int = 32, val_fraction: float = 0.1) -> dict[str, StreamingSplit]:
    """Scan a torchvision ImageFolder tree into streamed ``{"train", "val", "test"}`` splits.

    Layout: ``root/train/<class>/<images>`` and ``root/test/<class>/<images>``
    are required, ``root/val/<class>/<images>`` is optional (when absent, val is
    carved from train, see the module docstring). Classes are the sorted
    subfolder names of ``train``; val/test may use a subset of them. Images are
    read when a batch needs them, converted to RGB and bilinear-resized to
    ``size`` x ``size``.
    """
    _check_fraction(val_fraction)
    root = Path(root)
    expected = f"expected {root}/train/<class>/<images> and {root}/test/<class>/<images> ({root}/val/ optional)"
    require_folders(root, ("train", "test"), "ImageFolder", expected)
    classes = tuple(p.name for p in _class_dirs(root / "train"))
    if not classes:
        raise DataError(f"no class folders in {root / 'train'}; {expected}")

    train = scan_split_folder(root / "train", classes, size, every_class=True)
    if (root / "val").is_dir():
        val = scan_split_folder(root / "val", classes, size, every_class=False)
    else:
        train, val = _carve_val(train, val_fraction)
    return {"train": train, "val": val, "test": scan_split_folder(root / "test", classes, size, every_class=False)}
