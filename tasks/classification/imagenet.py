"""ImageNet-1k (ILSVRC 2012) as torchvision's reference recipe reads it, streamed from disk.

Layout (what ``torchvision.datasets.ImageFolder`` reads after the usual
preparation of the official archives)::

    <root>/train/<wnid>/*.JPEG     1.28 M images in 1000 folders, e.g. n01440764/n01440764_10026.JPEG
    <root>/val/<wnid>/*.JPEG       50000 images, 50 per class

The classes are the sorted folder names of ``train`` (the wnids, so class k is
torchvision's class k). The official validation set serves as the test split,
as the literature reports it (torchvision's model table, DKD/mdistiller's
ImageNet results); ``val`` is empty. Splits are streamed
(:class:`~bench.streaming.StreamingSplit`): only the file list is scanned here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.errors import DataError
from bench.streaming import StreamingSplit
from tasks.classification.real import IMAGE_EXTENSIONS, _class_dirs, require_folders, scan_split_folder

LAYOUT = "<root>/train/<wnid>/*.JPEG and <root>/val/<wnid>/*.JPEG (the validation images in class folders)"
DOWNLOAD = "https://image-net.org/download-images.php (ILSVRC2012 train and validation images)"


def load_imagenet(root: str | Path, size: int | None = None) -> dict[str, StreamingSplit]:
    """Scan ImageNet at ``root`` into streamed ``{"train", "val" (empty), "test" (the official val)}``.

    ``size=None`` keeps each image's size (the protocol's augmentation crops and resizes it, e.g.
    ``resizedcrop224-hflip``); an integer resizes every image to ``size`` x ``size`` when read.
    """
    root = Path(root)
    expected = f"expected {LAYOUT} under {root} (ImageNet from {DOWNLOAD})"
    require_folders(root, ("train", "val"), "ImageNet", expected)
    loose = [p for p in (root / "val").iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if loose and not _class_dirs(root / "val"):
        raise DataError(f"ImageNet: {root / 'val'} holds {len(loose)} images directly (e.g. {loose[0].name}) but no "
                        "class folders; move each validation image into val/<wnid>/ as the official "
                        f"validation labels assign it (the layout torchvision's ImageFolder reads); {expected}")
    classes = tuple(p.name for p in _class_dirs(root / "train"))
    if not classes:
        raise DataError(f"ImageNet: no class folders in {root / 'train'}; {expected}")
    train = scan_split_folder(root / "train", classes, size, every_class=True, kind="imagenet")
    test = scan_split_folder(root / "val", classes, size, every_class=False, kind="imagenet")
    val = StreamingSplit((), torch.zeros(0, dtype=torch.int64), classes, train.reader,
                         f"imagenet:{root} [val: empty, the official val is the test split]", dict(train.extra))
    return {"train": train, "val": val, "test": test}
