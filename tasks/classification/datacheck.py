"""Data checks of the real classification datasets (``kdbench data check NAME --data-root DIR``).

What "complete" means, per dataset (the official releases):

* CIFAR-100, python version: ``cifar-100-python/{train, test, meta}``, 50,000 training and 10,000 test
  images, 100 classes with 500 and 100 images each (Krizhevsky 2009; the download page below);
* CIFAR-10, python version: ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``, 50,000
  and 10,000 images, 10 classes with 5,000 and 1,000 each;
* ImageNet (ILSVRC-2012 classification): ``train/<wnid>/*.JPEG`` with 1,281,167 images and
  ``val/<wnid>/*.JPEG`` with 50,000 (50 per class), 1,000 WordNet-id folders in each (Russakovsky et al.
  2015). The official validation archive is flat: sort it into class folders first (e.g. with the
  ``valprep.sh`` of the PyTorch ImageNet example), as torchvision's ImageFolder also needs;
* ImageFolder: ``train/<class>/`` and ``test/<class>/`` with images (``val/`` optional), every training
  class with at least one image and every test class a training class; no official size.

CIFAR files are read with the loader itself (:func:`tasks.classification.real.load_cifar`), so a file
the loader would refuse is reported with the loader's message; image folders are counted, not decoded.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from bench.datacheck import DATA_CHECKS, DataCheck, DataReport
from bench.errors import DataError
from tasks.classification import real


class _CifarCheck(DataCheck):
    """CIFAR-10/100, python version; see the module docstring."""

    classes = 100
    folder = "cifar-100-python"
    download = f"{real._CIFAR_URL} (the 'CIFAR-100 python version' archive; unpack it in --data-root)"
    train_images, test_images = 50_000, 10_000

    @property
    def layout(self) -> str:
        return f"<data-root>/{self.folder}/{{{real._CIFAR[self.classes]['layout']}}} (or that folder itself)"

    def locate(self, root: Path) -> Path:
        return root / self.folder if (root / self.folder).is_dir() else root

    def check(self, root: Path) -> DataReport:
        report = self.report(root)
        try:
            splits = real.load_cifar(root, num_classes=self.classes, val_fraction=0.0)
        except DataError as exc:
            report.problems.append(str(exc))
            return report
        for name, expected in (("train", self.train_images), ("test", self.test_images)):
            split = splits[name]
            counts = Counter(split.targets.tolist())
            report.found.append(f"{name}: {len(split):,} images of {len(counts)} classes")
            if len(split) != expected:
                report.problems.append(f"{name} holds {len(split):,} images; the official set has {expected:,}")
            elif len(set(counts.values())) != 1 or len(counts) != self.classes:
                report.problems.append(f"{name}: the classes are not balanced as in the official set "
                                       f"({expected // self.classes:,} images each)")
        return report


@DATA_CHECKS.register("cifar100")
class Cifar100Check(_CifarCheck):
    name = "cifar100"


@DATA_CHECKS.register("cifar10")
class Cifar10Check(_CifarCheck):
    name = "cifar10"
    classes = 10
    folder = "cifar-10-batches-py"
    download = f"{real._CIFAR_URL} (the 'CIFAR-10 python version' archive; unpack it in --data-root)"


def _count_images(folder: Path) -> int:
    with os.scandir(folder) as entries:
        return sum(1 for e in entries if e.is_file() and os.path.splitext(e.name)[1].lower() in real.IMAGE_EXTENSIONS)


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


@DATA_CHECKS.register("imagenet")
class ImageNetCheck(DataCheck):
    """ILSVRC-2012 classification as class folders; see the module docstring."""

    name = "imagenet"
    layout = ("<data-root>/train/<wnid>/*.JPEG (1,000 folders n01440764 ..., 1,281,167 images) and "
              "<data-root>/val/<wnid>/*.JPEG (50,000 images, sorted into the same 1,000 folders, e.g. by the "
              "PyTorch ImageNet example's valprep.sh); <data-root> may also hold them in imagenet/")
    download = "https://image-net.org/download.php (ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar; " \
               "an ImageNet account is needed)"
    expected = {"train": 1_281_167, "val": 50_000}
    classes = 1000
    wnid = re.compile(r"n\d{8}")

    def locate(self, root: Path) -> Path:
        for candidate in (root, root / "imagenet"):
            if (candidate / "train").is_dir() and (candidate / "val").is_dir():
                return candidate
        return root

    def check(self, root: Path) -> DataReport:
        report = self.report(root)
        train_classes = None
        for split, expected in self.expected.items():
            folder = root / split
            if not folder.is_dir():
                report.problems.append(f"folder {folder} does not exist")
                continue
            classes = _class_folders(folder)
            images = sum(_count_images(c) for c in classes)
            report.found.append(f"{split}: {images:,} images in {len(classes):,} class folders")
            odd = [c.name for c in classes if not self.wnid.fullmatch(c.name)]
            if odd:
                report.problems.append(f"{folder} has folders that are not WordNet ids: {', '.join(odd[:3])}"
                                       + (" ..." if len(odd) > 3 else ""))
            if len(classes) != self.classes:
                report.problems.append(f"{folder} has {len(classes):,} class folders; the official set has "
                                       f"{self.classes:,}")
            if images != expected:
                loose = _count_images(folder)
                hint = f" ({loose:,} images lie directly in {folder}: sort them into class folders)" if loose else ""
                report.problems.append(f"{split} holds {images:,} images; the official set has {expected:,}{hint}")
            names = {c.name for c in classes}
            if train_classes is None:
                train_classes = names
            elif names - train_classes:
                extra = sorted(names - train_classes)
                report.problems.append(f"{folder} has classes that train/ lacks: {', '.join(extra[:3])}")
        return report


@DATA_CHECKS.register("imagefolder")
class ImageFolderCheck(DataCheck):
    """A torchvision ImageFolder tree; see the module docstring."""

    name = "imagefolder"
    layout = "<data-root>/train/<class>/<images> and <data-root>/test/<class>/<images> (<data-root>/val/ optional)"
    download = "(your own data: no official release)"

    def check(self, root: Path) -> DataReport:
        report = self.report(root)
        classes = None
        for split in ("train", "val", "test"):
            folder = root / split
            if not folder.is_dir():
                if split != "val":
                    report.problems.append(f"folder {folder} does not exist")
                continue
            counts = {c.name: _count_images(c) for c in _class_folders(folder)}
            report.found.append(f"{split}: {sum(counts.values()):,} images in {len(counts):,} class folders")
            if split == "train":
                classes = set(counts)
                empty = [name for name, n in counts.items() if n == 0]
                if not counts:
                    report.problems.append(f"{folder} has no class folders")
                if empty:
                    report.problems.append(f"training class folders without images: {', '.join(empty[:3])}")
            elif classes is not None and set(counts) - classes:
                report.problems.append(f"{folder} has classes that train/ lacks: "
                                       f"{', '.join(sorted(set(counts) - classes)[:3])}")
            if split != "train" and counts and not sum(counts.values()):
                report.problems.append(f"{folder} holds no images")
        return report
