"""The paper recipes end to end on format-identical fixtures, in seconds: CIFAR-100 pickles with random
crops, step decay and CIFAR normalisation; an ImageNet JPEG tree streamed through loader workers with
random resized crops. With random crops the teacher runs live and the record says so."""

from __future__ import annotations

import dataclasses

import pytest
from real_formats import write_cifar100, write_imagenet

from bench.protocol import Schedule, TeacherRecipe
from bench.results import ResultsStore
from bench.runner import RunOptions, run_one

CIFAR_MEAN_STD = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))  # RepDistiller dataset/cifar100.py
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture(autouse=True)
def _no_latency(no_latency_measurement):
    """Efficiency is not what these runs check (see the fixture in conftest.py)."""


def recipe(base, name: str, dataset: dict, augmentation: str, normalization, batch_size: int):
    """``base`` (the smoke protocol) with a paper recipe's data handling and a 2-epoch step schedule."""
    schedule = Schedule(epochs=2, batch_size=batch_size, lr=0.05, nesterov=False, lr_schedule="step",
                        milestones=(1,), gamma=0.1, lr_by_model={"tinyresnet_4": 0.01})
    return dataclasses.replace(base, name=name, dataset=dataset, augmentation=augmentation,
                               normalization=normalization, schedule=schedule, student="tinyresnet_4",
                               teacher=TeacherRecipe("tinyresnet_8", schedule), seeds=(0,), ensemble=(),
                               assistants=(), assistant_sweep=())


def test_cifar100_recipe_trains_on_all_of_train_with_the_teacher_live(smoke_protocol, tmp_path):
    write_cifar100(tmp_path / "data", train_per_class=2, test_per_class=2)
    protocol = recipe(smoke_protocol, "cifar100-recipe-fixture", {"name": "cifar100", "val_fraction": 0.0},
                      "crop32pad4-hflip", CIFAR_MEAN_STD, batch_size=50)
    options = RunOptions(data_root=str(tmp_path / "data"))
    record = run_one(protocol, "kd", 0, ResultsStore(str(tmp_path / "results")), options)
    assert record["cost"]["steps"] == 2 * 200 // 50  # all 200 training images: val_fraction 0
    assert record["cost"]["teacher_output_cache"] is False
    assert record["cost"]["teacher_forwards"] == record["cost"]["steps"] * 50  # live, every step
    assert 0 <= record["metrics"]["top1"] <= 100
    spec = record["protocol"]["spec"]
    assert spec["schedule"]["milestones"] == [1] and spec["normalization"] == [list(v) for v in CIFAR_MEAN_STD]

    finite = dataclasses.replace(protocol, name="cifar100-recipe-fixture-hflip", augmentation="hflip")
    cached = run_one(finite, "kd", 0, ResultsStore(str(tmp_path / "results")), options)
    assert cached["cost"]["teacher_output_cache"] is True and cached["cost"]["teacher_forwards"] == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_imagenet_recipe_streams_through_loader_workers(smoke_protocol, tmp_path, workers):
    root = write_imagenet(tmp_path / "imagenet", classes=3, train_per_class=4, val_per_class=2)
    protocol = recipe(smoke_protocol, "imagenet-recipe-fixture", {"name": "imagenet"}, "resizedcrop224-hflip",
                      IMAGENET_MEAN_STD, batch_size=4)
    options = RunOptions(data_root=str(root), workers=workers)
    record = run_one(protocol, "kd", 0, ResultsStore(str(tmp_path / "results")), options)
    assert record["cost"]["steps"] == 2 * 12 // 4 and record["cost"]["teacher_output_cache"] is False
    assert record["efficiency"]["input_size"] == [3, 224, 224]
    assert 0 <= record["metrics"]["top1"] <= 100
    if workers:  # the same numbers whatever the worker count
        again = run_one(protocol, "kd", 0, ResultsStore(str(tmp_path / "again")),
                        dataclasses.replace(options, workers=0))
        assert again["metrics"] == record["metrics"] and again["final_losses"] == record["final_losses"]
