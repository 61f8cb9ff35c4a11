"""Streaming splits read through DataLoader workers (issue 13 item 4): the same batches whatever the
worker count, the same batches as the in-memory path, evaluation, and errors that name the file."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from real_formats import make_image_folder, read_all, write_imagenet

from bench.errors import ConfigError, DataError
from bench.protocol import get_protocol
from bench.streaming import Loading, StreamingSplit
from bench.task import Split, make_task
from tasks.classification.real import load_image_folder


def task_for(augmentation: str, workers: int):
    protocol = dataclasses.replace(get_protocol("classification-smoke"), augmentation=augmentation)
    return make_task(protocol, Loading(workers=workers))


def epoch(task, split, augmentation: str, seed: int = 0, batch_size: int = 4):
    return list(task.train_batches(split, batch_size, augmentation, torch.Generator().manual_seed(seed)))


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x.inputs, y.inputs) and torch.equal(x.targets, y.targets) and torch.equal(x.indices, y.indices)
        and torch.equal(x.variants, y.variants) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("augmentation", ["hflip", "crop32pad4-hflip"])
def test_batches_do_not_depend_on_the_worker_count_and_match_the_in_memory_path(tmp_path, augmentation):
    make_image_folder(tmp_path)
    streamed = load_image_folder(tmp_path, val_fraction=0.0)["train"]
    assert isinstance(streamed, StreamingSplit) and len(streamed) == 15
    in_memory = Split(read_all(streamed), streamed.targets, streamed.classes)
    main = epoch(task_for(augmentation, 0), streamed, augmentation)
    assert len(main) == 3
    assert same(main, epoch(task_for(augmentation, 2), streamed, augmentation))
    assert same(main, epoch(task_for(augmentation, 0), in_memory, augmentation))
    assert not same(main, epoch(task_for(augmentation, 2), streamed, augmentation, seed=1))


def test_evaluation_of_a_streamed_split_is_that_of_the_same_images_in_memory(tmp_path):
    make_image_folder(tmp_path)
    streamed = load_image_folder(tmp_path, val_fraction=0.0)["train"]
    in_memory = Split(read_all(streamed), streamed.targets, streamed.classes)
    task = task_for("crop32pad4-hflip", 2)
    torch.manual_seed(0)
    model = task.build_model("tinyresnet_4", 3)
    assert task.evaluate(model, streamed, 4) == task.evaluate(model, in_memory, 4)


def test_an_unreadable_image_read_by_a_worker_names_the_file(tmp_path):
    make_image_folder(tmp_path)
    bad = tmp_path / "train" / "eel" / "02.png"
    bad.write_bytes(b"not a png at all")
    streamed = load_image_folder(tmp_path, val_fraction=0.0)["train"]
    with pytest.raises(DataError) as exc:
        epoch(task_for("hflip", 1), streamed, "hflip", batch_size=15)
    assert str(bad) in str(exc.value) and "Traceback" not in str(exc.value)


def test_loading_options():
    assert Loading.for_device("cpu", 3) == Loading(workers=3, pin_memory=False)
    assert Loading.for_device("cuda:0", 0) == Loading(workers=0, pin_memory=True)
    assert Loading.for_device("cpu").workers >= 1
    with pytest.raises(ConfigError, match="--workers"):
        Loading(workers=-1)


def test_imagenet_images_of_varying_size_need_a_resizing_augmentation(tmp_path):
    root = write_imagenet(tmp_path)
    with pytest.raises(ConfigError) as exc:
        task_for("hflip", 0).load_splits({"name": "imagenet"}, str(root))
    assert "varying size" in str(exc.value) and "resizedcrop224-hflip" in str(exc.value)
    splits = task_for("resizedcrop224-hflip", 0).load_splits({"name": "imagenet"}, str(root))
    batch = epoch(task_for("resizedcrop224-hflip", 2), splits["train"], "resizedcrop224-hflip", batch_size=5)[0]
    assert batch.inputs.shape == (5, 3, 224, 224) and batch.inputs.dtype == torch.float32
