"""The ``imagenet`` dataset: the ILSVRC 2012 layout torchvision's ImageFolder reads, streamed, on a tree of
JPEGs written here; errors name the folder or file and say what layout is expected."""

from __future__ import annotations

import shutil

import pytest
import torch
from real_formats import write_imagenet

from bench.errors import DataError
from bench.streaming import StreamingSplit
from tasks.classification.imagenet import load_imagenet


def test_classes_come_from_train_and_the_official_val_is_the_test_split(tmp_path):
    root = write_imagenet(tmp_path, classes=3, train_per_class=4, val_per_class=2)
    splits = load_imagenet(root)
    assert set(splits) == {"train", "val", "test"}
    assert all(isinstance(s, StreamingSplit) for s in splits.values())
    wnids = ("n01440764", "n01440765", "n01440766")
    assert all(s.classes == wnids for s in splits.values())
    assert splits["train"].targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert splits["test"].targets.tolist() == [0, 0, 1, 1, 2, 2]
    assert all("/val/" in f and f.endswith(".JPEG") for f in splits["test"].files)
    assert len(splits["val"]) == 0 and "empty" in splits["val"].source
    first = splits["train"].read(0)
    assert first.dtype == torch.uint8 and first.shape == (3, 40, 56)  # its own size: the augmentation crops
    assert load_imagenet(root, size=16)["test"].read(5).shape == (3, 16, 16)


def test_missing_folders_name_the_layout_and_the_download_page(tmp_path):
    with pytest.raises(DataError) as exc:
        load_imagenet(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(exc.value) and "image-net.org" in str(exc.value)
    root = write_imagenet(tmp_path / "in")
    shutil.rmtree(root / "val")
    with pytest.raises(DataError) as exc:
        load_imagenet(root)
    assert str(root / "val") in str(exc.value) and "<root>/val/<wnid>/*.JPEG" in str(exc.value)


def test_a_flat_val_folder_says_how_to_fix_it(tmp_path):
    """The validation archive unpacks as 50000 loose JPEGs; ImageFolder needs them in class folders."""
    root = write_imagenet(tmp_path)
    for path in list((root / "val").rglob("*.JPEG")):
        path.rename(root / "val" / path.name)
    for folder in list((root / "val").iterdir()):
        if folder.is_dir():
            folder.rmdir()
    with pytest.raises(DataError) as exc:
        load_imagenet(root)
    assert "no class folders" in str(exc.value) and "val/<wnid>/" in str(exc.value)


def test_a_val_class_unknown_to_train_is_named(tmp_path):
    root = write_imagenet(tmp_path)
    (root / "val" / "n09999999").mkdir()
    shutil.copy(next((root / "val" / "n01440764").iterdir()), root / "val" / "n09999999" / "x.JPEG")
    with pytest.raises(DataError) as exc:
        load_imagenet(root)
    assert str(root / "val" / "n09999999") in str(exc.value)


def test_an_unreadable_jpeg_is_named_when_it_is_read(tmp_path):
    root = write_imagenet(tmp_path)
    bad = sorted((root / "train" / "n01440765").iterdir())[1]
    bad.write_bytes(b"\xff\xd8\xff truncated")
    train = load_imagenet(root)["train"]
    with pytest.raises(DataError, match="cannot read image") as exc:
        train.read(train.files.index(str(bad)))
    assert str(bad) in str(exc.value)
