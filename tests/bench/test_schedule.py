"""Step decay, per-model learning rates and normalisation in the protocol (issue 13): the rates, the
validation errors, the plain-data round trip, and that every protocol without them keeps its hash."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from bench import engine
from bench.errors import ConfigError
from bench.identity import protocol_spec
from bench.protocol import Schedule, from_dict, get_protocol
from bench.registry import PROTOCOLS
from bench.teachers import recipe_hash

STEP = dict(lr_schedule="step", milestones=(3, 6, 8), gamma=0.1)
REFERENCE_RECORDS = Path(__file__).resolve().parents[2] / "leaderboard" / "regression"


def rates(schedule: Schedule, per_epoch: int, lr: float | None = None) -> list[float]:
    """The learning rate of every step, as the engine's optimiser and scheduler set it."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer, scheduler = engine.make_optimizer([param], schedule, per_epoch * schedule.epochs, per_epoch, lr)
    seen = []
    for _ in range(per_epoch * schedule.epochs):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_step_decay_is_repdistillers_adjust_learning_rate_per_epoch():
    """RepDistiller train_student.py: at epoch e (from 1), lr = base * 0.1 ** #{m in milestones: e > m}."""
    schedule = Schedule(epochs=10, batch_size=8, lr=0.05, **STEP)
    got = rates(schedule, per_epoch=4)
    for step, lr in enumerate(got):
        epoch = step // 4 + 1
        assert lr == pytest.approx(0.05 * 0.1 ** sum(epoch > m for m in (3, 6, 8)), rel=1e-12)
    assert got[11] == pytest.approx(0.05) and got[12] == pytest.approx(0.005)  # the decay after epoch 3


def test_step_decay_is_torchs_multisteplr_stepped_per_epoch():
    schedule = Schedule(epochs=10, batch_size=8, lr=0.1, lr_schedule="step", milestones=(2, 7), gamma=0.2)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.1)
    reference = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 7], gamma=0.2)
    per_epoch = []
    for _ in range(10):
        per_epoch.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    got = rates(schedule, per_epoch=3)
    assert got == pytest.approx([lr for lr in per_epoch for _ in range(3)], rel=1e-12)


def test_cosine_stays_the_default_and_anneals_per_step():
    schedule = Schedule(epochs=2, batch_size=8, lr=0.1)
    assert schedule.lr_schedule == "cosine"
    got = rates(schedule, per_epoch=5)
    assert got == pytest.approx([0.05 * (1 + math.cos(math.pi * t / 10)) for t in range(10)], rel=1e-9)


def test_poly_decays_per_step_as_skd_and_mmsegmentation_with_power_0_9():
    """SKD's ``lr_poly`` and mmsegmentation's PolyLR: lr = base * (1 - step / total) ** 0.9 (down to 0 here)."""
    schedule = Schedule(epochs=3, batch_size=8, lr=0.01, lr_schedule="poly")
    got = rates(schedule, per_epoch=4)
    assert got == pytest.approx([0.01 * (1 - t / 12) ** 0.9 for t in range(12)], rel=1e-9)
    with pytest.raises(ConfigError, match="key 'milestones' applies only to lr_schedule 'step'"):
        Schedule(epochs=3, batch_size=8, lr=0.01, lr_schedule="poly", milestones=(1,))


def test_lr_by_model_overrides_the_base_rate_of_those_models_only():
    schedule = Schedule(epochs=4, batch_size=8, lr=0.05, lr_by_model={"ShuffleNetV1": 0.01, "MobileNetV2": 0.01})
    assert schedule.lr_by_model == (("MobileNetV2", 0.01), ("ShuffleNetV1", 0.01))  # canonical: sorted pairs
    assert schedule.lr_for("MobileNetV2") == 0.01 and schedule.lr_for("resnet8x4") == 0.05
    assert schedule.resolved("MobileNetV2") == Schedule(epochs=4, batch_size=8, lr=0.01)
    assert rates(schedule, 2, lr=schedule.lr_for("MobileNetV2"))[0] == pytest.approx(0.01)


def test_train_uses_the_rate_of_the_model_it_trains(tiny_protocol, monkeypatch, tmp_path, no_latency_measurement):
    """run_one trains the student at its own rate and the zoo trains the teacher at the teacher's."""
    from bench.results import ResultsStore
    from bench.runner import RunOptions, run_one

    seen = []
    original = engine.make_optimizer

    def spy(params, schedule, total, per_epoch=1, lr=None):
        seen.append(lr)
        return original(params, schedule, total, per_epoch, lr)

    monkeypatch.setattr(engine, "make_optimizer", spy)
    schedule = dataclasses.replace(tiny_protocol.schedule, lr_by_model=((tiny_protocol.student, 0.02),
                                                                        (tiny_protocol.teacher.model, 0.03)))
    protocol = dataclasses.replace(tiny_protocol, name="classification-lr-by-model", schedule=schedule,
                                   teacher=dataclasses.replace(tiny_protocol.teacher, schedule=schedule))
    run_one(protocol, "kd", 0, ResultsStore(str(tmp_path)), RunOptions())
    assert seen == [0.03, 0.02]


def test_train_refuses_per_model_rates_without_the_model_name(tiny_protocol):
    from bench.runner import RunOptions, Workspace, build_method
    from bench.distill import Distiller

    ws = Workspace(tiny_protocol, RunOptions())
    student = ws.task.build_model(tiny_protocol.student, 20)
    distiller = Distiller(ws.task, student, tiny_protocol.student, build_method(tiny_protocol, "baseline"))
    schedule = dataclasses.replace(tiny_protocol.schedule, lr_by_model=(("tinyresnet_8", 0.01),))
    with pytest.raises(ValueError, match="model_name"):
        engine.train(distiller, ws.splits["train"], schedule, "hflip", torch.Generator())


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("fields,expected", [
    (dict(lr_schedule="linear"), ["'lr_schedule'", "cosine, step", "'linear'"]),
    (dict(lr_schedule="step"), ["'milestones'", "empty"]),
    (dict(lr_schedule="step", milestones=(6, 3)), ["'milestones'", "strictly increasing", "[6, 3]"]),
    (dict(lr_schedule="step", milestones=(3, 3)), ["'milestones'", "strictly increasing"]),
    (dict(lr_schedule="step", milestones=(3, 10)), ["'milestones'", "1..9", "epochs is 10"]),
    (dict(lr_schedule="step", milestones=(0, 3)), ["'milestones'", "1..9"]),
    (dict(lr_schedule="step", milestones=(2.5,)), ["'milestones'", "whole epochs"]),
    (dict(lr_schedule="step", milestones=(3,), gamma=0.0), ["'gamma'", "> 0"]),
    (dict(milestones=(3,)), ["'milestones'", "only to lr_schedule 'step'"]),
    (dict(gamma=0.5), ["'gamma'", "only to lr_schedule 'step'"]),
    (dict(lr_by_model={"resnet8x4": -1.0}), ["'lr_by_model'", "resnet8x4", "> 0"]),
    (dict(lr_by_model=(("resnet8x4", 0.1), ("resnet8x4", 0.2))), ["'lr_by_model'", "twice"]),
])
def test_bad_schedules_name_the_key(fields, expected):
    with pytest.raises(ConfigError) as exc:
        Schedule(epochs=10, batch_size=8, lr=0.1, **fields)
    for text in expected:
        assert text in str(exc.value)


def test_from_dict_names_where_the_bad_schedule_is():
    data = get_protocol("classification-mini").to_dict()
    data["teacher"]["schedule"]["lr_schedule"] = "step"
    data["teacher"]["schedule"]["milestones"] = [30, 10]
    with pytest.raises(ConfigError, match=r"^protocol\.teacher\.schedule: key 'milestones' must be strictly"):
        from_dict(data)


def test_lr_by_model_names_must_be_registered_models_listing_them():
    data = get_protocol("classification-mini").to_dict()
    data["schedule"]["lr_by_model"] = {"MobileNetV3": 0.01}
    with pytest.raises(ConfigError) as exc:
        from_dict(data)
    message = str(exc.value)
    assert "'schedule.lr_by_model'" in message and "'MobileNetV3'" in message and "tinyresnet_12" in message


@pytest.mark.parametrize("value,expected", [
    (((0.5, 0.5), (0.2,)), "one value per channel"),
    (((0.5, 0.5, 0.5), (0.2, 0.0, 0.2)), "std must be > 0"),
    ((0.5, 0.25, 0.1), "[mean, std]"),
])
def test_bad_normalization_names_the_key(value, expected):
    with pytest.raises(ConfigError, match="'normalization'") as exc:
        dataclasses.replace(get_protocol("classification-mini"), normalization=value)
    assert expected in str(exc.value)


# ----------------------------------------------------------------------------- identity


def test_plain_data_round_trip_of_the_new_fields():
    """A protocol file's JSON lists come back as the same protocol (and hash)."""
    p = get_protocol("classification-mini")
    schedule = dataclasses.replace(p.schedule, lr_by_model={"tinyresnet_12": 0.01}, **STEP, epochs=10)
    p = dataclasses.replace(p, schedule=schedule, normalization=([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]))
    data = json.loads(json.dumps(p.to_dict()))
    assert isinstance(data["schedule"]["milestones"], list)
    q = from_dict(data)
    assert q == p and q.spec_hash == p.spec_hash
    assert q.schedule.milestones == (3, 6, 8) and q.normalization == ((0.1, 0.2, 0.3), (0.3, 0.2, 0.1))


def test_the_new_fields_enter_the_hash_only_when_set():
    p = get_protocol("classification-mini")
    spec = protocol_spec(p)
    for recipe in (spec["schedule"], spec["teacher"]["schedule"], *(m["schedule"] for m in spec["ensemble"])):
        assert not {"lr_schedule", "milestones", "gamma", "lr_by_model"} & set(recipe)
    assert "normalization" not in spec
    variants = [dataclasses.replace(p, schedule=dataclasses.replace(p.schedule, **STEP)),
                dataclasses.replace(p, schedule=dataclasses.replace(p.schedule, lr_by_model={"tinyresnet_8": 0.1})),
                dataclasses.replace(p, normalization=((0.5,) * 3, (0.25,) * 3))]
    hashes = {p.spec_hash, *(v.spec_hash for v in variants)}
    assert len(hashes) == 4


def test_every_stored_reference_record_still_names_its_protocols_hash():
    """The regression reference was written before these fields existed: its hashes must still match."""
    records = sorted(REFERENCE_RECORDS.rglob("seed-*.json"))
    assert records
    for path in records:
        record = json.loads(path.read_text())
        name = record["protocol"]["name"]
        if name in PROTOCOLS:
            assert get_protocol(name).spec_hash == record["protocol"]["hash"], path


def test_a_teachers_recipe_hash_holds_its_own_rate_only():
    """Per-model rates of other models leave a teacher's recipe (and cache) alone; its own rate does not."""
    p = get_protocol("classification-mini")
    teacher = p.teacher.model

    def with_table(table):
        schedule = dataclasses.replace(p.schedule, lr_by_model=table)
        return dataclasses.replace(p, teacher=dataclasses.replace(p.teacher, schedule=schedule))

    assert recipe_hash(with_table({"tinyresnet_4": 0.01}), "d") == recipe_hash(p, "d")
    assert recipe_hash(with_table({teacher: p.schedule.lr}), "d") == recipe_hash(p, "d")
    assert recipe_hash(with_table({teacher: 0.01}), "d") != recipe_hash(p, "d")
    assert recipe_hash(dataclasses.replace(p, normalization=((0.5,) * 3, (0.2,) * 3)), "d") != recipe_hash(p, "d")


def test_drop_last_false_trains_on_the_last_partial_batch_as_torch_dataloader_does():
    """RepDistiller's and torchvision's loaders keep the last partial batch: every sample once per epoch."""
    from bench.task import Split
    from tasks.classification.task import ClassificationTask

    task = ClassificationTask()
    split = Split(torch.zeros(10, 3, 4, 4, dtype=torch.uint8), torch.arange(10), tuple("abcdefghij"))
    kept = list(task.train_batches(split, 4, "none", torch.Generator().manual_seed(0), drop_last=False))
    dropped = list(task.train_batches(split, 4, "none", torch.Generator().manual_seed(0)))
    assert [len(b.targets) for b in kept] == [4, 4, 2]
    assert sorted(torch.cat([b.indices for b in kept]).tolist()) == list(range(10))
    assert [len(b.targets) for b in dropped] == [4, 4]
    assert task.batches_per_epoch(split, 4, drop_last=False) == 3 and task.batches_per_epoch(split, 4) == 2


def test_the_cifar100_recipe_keeps_the_last_batch_and_drop_last_stays_out_of_other_hashes():
    protocol = get_protocol("cifar100-resnet32x4-resnet8x4")
    assert protocol.schedule.drop_last is False and protocol.teacher.schedule.drop_last is False
    assert -(-50000 // protocol.schedule.batch_size) == 782
    spec = protocol_spec(get_protocol("classification-mini"))
    assert "drop_last" not in spec["schedule"] and "drop_last" not in spec["teacher"]["schedule"]
    with pytest.raises(ConfigError, match="drop_last"):
        Schedule(epochs=2, batch_size=4, lr=0.1, drop_last="no")
