"""The full tier of classification: the published benchmarks, on real data, with their recipes.

* ``cifar100-<teacher>-<student>`` (version 1), one per pair of the CRD / RepDistiller CIFAR-100 tables
  (7 same-family and 6 cross-family pairs), all built from the one recipe of ``cifar100.toml``: the
  recipe's table plus the pair's student, and the pair's teacher trained on the same recipe (the
  suite trains it when no teacher file is given; users normally give the reference's file).
* ``imagenet-resnet34-resnet18`` (version 1) from ``imagenet.toml``, a protocol file in the format
  ``--protocol-file`` reads; its teacher is the user's torchvision file, pinned by name.

Each protocol's published numbers are claims (``published_*.json``, :mod:`bench.claims`), never
records. The files are data; this module only reads them, so that a recipe is written once and a
built-in protocol passes the same checks as a user's file (:func:`bench.protocol_file.protocol_from_data`).
Checks run when a protocol is built, not at import (the registries are still being filled then).

:func:`smoke_variant` cuts a full protocol to seconds for tests (same models, loaders, augmentation,
normalisation and schedule shape); it is not registered, so neither ``kdbench suite`` nor the gate
ever runs it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path
from typing import Any

from bench.claims import register_claims
from bench.protocol import Protocol
from bench.protocol_file import protocol_from_data, read_data_file
from bench.registry import PROTOCOLS

HERE = Path(__file__).resolve().parent
CIFAR100_RECIPE = HERE / "cifar100.toml"
IMAGENET_PROTOCOL = HERE / "imagenet.toml"


@functools.cache
def _cifar100_file() -> dict[str, Any]:
    return read_data_file(CIFAR100_RECIPE)


def cifar100_pairs() -> list[tuple[str, str]]:
    """The (teacher, student) pairs of the recipe file, in the papers' column order."""
    return [(pair["teacher"], pair["student"]) for pair in _cifar100_file()["pairs"]]


def cifar100_protocol(teacher: str, student: str) -> Protocol:
    """The recipe of ``cifar100.toml`` for one pair (with the pair's ``feature_stages``, if any), checked
    like a protocol file."""
    recipe = copy.deepcopy(_cifar100_file()["recipe"])
    [pair] = [p for p in _cifar100_file()["pairs"] if (p["teacher"], p["student"]) == (teacher, student)]
    extra = {key: value for key, value in pair.items() if key not in ("teacher", "student")}
    name = f"cifar100-{teacher}-{student}"
    lrs = dict(recipe["schedule"].get("lr_by_model", ()))
    schedule = recipe["schedule"]
    data = {
        **recipe, **extra, "name": name, "student": student,
        "teacher": {"model": teacher, "schedule": copy.deepcopy(schedule), "seed": 0},
        "description": (
            f"CIFAR-100 (official 50k train / 10k test), teacher {teacher} -> student {student}, the "
            f"RepDistiller recipe: {schedule['epochs']} epochs, SGD momentum {schedule['momentum']}, weight decay "
            f"{schedule['weight_decay']:g}, batch {schedule['batch_size']}, lr {lrs.get(student, schedule['lr']):g} "
            f"x{schedule['gamma']:g} at {', '.join(map(str, schedule['milestones']))}, random crop 32 pad 4 + flip, "
            "CIFAR-100 mean/std; KD T=4, CE 0.1 + KD 0.9; last-epoch top-1 over seeds 0-2."),
    }
    return protocol_from_data(data, f"{CIFAR100_RECIPE.name} (pair {teacher} -> {student})")


def imagenet_protocol() -> Protocol:
    """``imagenet.toml``, checked like any protocol file."""
    return protocol_from_data(read_data_file(IMAGENET_PROTOCOL), IMAGENET_PROTOCOL.name)


def _register_pairs() -> None:
    for teacher, student in cifar100_pairs():
        PROTOCOLS.register(f"cifar100-{teacher}-{student}")(functools.partial(cifar100_protocol, teacher, student))


_register_pairs()
PROTOCOLS.register("imagenet-resnet34-resnet18")(imagenet_protocol)
register_claims(HERE / "published_crd_cifar100.json")
register_claims(HERE / "published_imagenet_r34_r18.json")


#: what :func:`smoke_variant` keeps of a full schedule: a few epochs, with the milestones scaled
SMOKE_EPOCHS = 4
SMOKE_BATCH = 8


def smoke_variant(protocol: Protocol, epochs: int = SMOKE_EPOCHS, batch_size: int = SMOKE_BATCH,
                  teacher_file: str | None = None, seeds: tuple[int, ...] = (0,)) -> Protocol:
    """``protocol`` cut to seconds for tests: the same task, dataset loader, models, augmentation,
    normalisation, optimiser and schedule shape (step decay at the same fractions of training, the
    same per-model learning rates), with ``epochs`` epochs of ``batch_size`` and the given seeds.
    The data is whatever small folder the test gives as ``--data-root``. ``teacher_file`` replaces a
    pinned teacher file name (a test's own random ResNet-34 has another sha256). Named
    ``<name>-smoke`` in tier ``smoke``; never registered."""
    def shrink(schedule):
        scaled = {min(max(1, round(m * epochs / schedule.epochs)), epochs - 1) for m in schedule.milestones}
        milestones = tuple(sorted(scaled)) if epochs > 1 else ()
        return dataclasses.replace(schedule, epochs=epochs, batch_size=batch_size, milestones=milestones)

    teacher = dataclasses.replace(protocol.teacher, schedule=shrink(protocol.teacher.schedule))
    return dataclasses.replace(
        protocol, name=f"{protocol.name}-smoke", tier="smoke", schedule=shrink(protocol.schedule), teacher=teacher,
        seeds=tuple(seeds), teacher_file=protocol.teacher_file if teacher_file is None else teacher_file,
        description=f"{protocol.key} cut to {epochs} epochs of batch {batch_size} for tests (not registered)")
