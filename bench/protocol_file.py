"""Protocols as data: a user's protocol file (``--protocol-file FILE``) and the built-in recipe files.

A protocol file is TOML (``.toml``, read with :mod:`tomllib`) or JSON (``.json``) holding the fields of
:class:`bench.protocol.Protocol` (``name``, ``task``, ``tier``, ``version``, ``dataset``, ``student``,
``teacher`` with its ``schedule``, ``schedule``, ``augmentation``, ``metrics``, ``primary_metric``,
``seeds``, ...). It goes through the same :func:`bench.protocol.from_dict` as every built-in protocol
(an unknown key is named with the valid ones), then through :func:`check_names` (every task, dataset,
model, augmentation and method it names must be registered; an unknown one is listed with the valid
ones), and is hashed by the same :attr:`Protocol.spec_hash`: a file that spells out a registered
protocol has that protocol's hash. A file may not reuse a registered protocol's name with another
specification (their records would share a table key).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, KDBenchError, UnknownNameError
from bench.protocol import Protocol, from_dict
from bench.teacher_dir import pinned_prefix

#: file suffix -> the format read
FORMATS = {".toml": "TOML", ".json": "JSON"}


def read_data_file(path: str | Path) -> dict[str, Any]:
    """The table a TOML or JSON file holds; a missing file, another suffix or a syntax error is a
    :class:`ConfigError` naming the file (and the line, where the parser gives it)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(f"protocol file {path}: unknown format {path.suffix or '(no suffix)'!r}; "
                          f"use {' or '.join(FORMATS)}")
    if not path.is_file():
        raise ConfigError(f"protocol file {path} does not exist")
    try:
        if path.suffix.lower() == ".toml":
            with open(path, "rb") as f:
                data = tomllib.load(f)
        else:
            data = json.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"protocol file {path} is not valid {FORMATS[path.suffix.lower()]}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"protocol file {path} holds a {type(data).__name__}, not a table of protocol keys")
    return data


def protocol_from_data(data: dict[str, Any], where: str) -> Protocol:
    """``data`` as a checked protocol (:func:`from_dict`, then :func:`check_names`); every error names
    ``where`` (a file, or a built-in recipe)."""
    try:
        protocol = from_dict(data)
        check_names(protocol)
    except UnknownNameError as exc:
        raise UnknownNameError(exc.kind, exc.name, exc.valid, hint=f"in {where}") from None
    except KDBenchError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return protocol


def read_protocol_file(path: str | Path) -> Protocol:
    """The protocol a user's file describes, checked like a built-in one (see the module docstring)."""
    from bench.protocol import get_protocol
    from bench.registry import PROTOCOLS

    protocol = protocol_from_data(read_data_file(path), f"protocol file {path}")
    if protocol.name in PROTOCOLS and get_protocol(protocol.name).spec_hash != protocol.spec_hash:
        raise ConfigError(f"protocol file {path} names the registered protocol {protocol.name!r} with another "
                          "specification (their records would share one table); give it a name of its own")
    return protocol


def check_names(protocol: Protocol) -> None:
    """Raise unless every name ``protocol`` uses is registered: its task, dataset, models (student,
    teacher, ensemble, assistants, per-model learning rates), augmentation (one of the task's) and the
    methods of ``method_overrides`` with hyperparameters they accept; ``feature_stages`` no more than the
    student's and the teacher's stage points."""
    from bench.registry import DATASETS, METHODS, MODELS, TASKS

    task = TASKS.get(protocol.task)()
    if "name" not in protocol.dataset:
        raise ConfigError("protocol.dataset: missing key 'name' (a registered dataset)")
    DATASETS.get(protocol.dataset["name"])
    schedules = [protocol.schedule, protocol.teacher.schedule, *(r.schedule for r in protocol.ensemble)]
    models = [protocol.student, protocol.teacher.model, *(r.model for r in protocol.ensemble),
              *protocol.assistants, *protocol.assistant_sweep,
              *(name for s in schedules for name, _ in getattr(s, "lr_by_model", ()))]
    for model in models:
        MODELS.get(model)
    if protocol.augmentation not in task.augmentations:
        raise ConfigError(f"key 'augmentation': {protocol.augmentation!r} is not an augmentation of task "
                          f"{protocol.task!r}; valid: {', '.join(task.augmentations)}")
    for method, hparams in protocol.method_overrides.items():
        METHODS.get(method)(**hparams)
    if protocol.feature_stages:
        for model in (protocol.student, protocol.teacher.model):
            have = sum(1 for point in task.feature_points(model) if re.fullmatch(r"stage\d+", point))
            if have < protocol.feature_stages:
                raise ConfigError(f"key 'feature_stages': {protocol.feature_stages} stages asked, but model "
                                  f"{model!r} declares {have} (stage1..stage{have})")
    if protocol.teacher_file and not re.fullmatch(r"[0-9a-f]{6,64}", pinned_prefix(protocol.teacher_file)):
        raise ConfigError(f"key 'teacher_file': {protocol.teacher_file!r} does not pin a sha256; name the file "
                          "<name>-<first hex digits of its sha256>.<ext>, as torchvision does (resnet34-b627a593.pth)")
