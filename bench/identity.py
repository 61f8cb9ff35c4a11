"""Identity of a result, data fingerprints and training-code digests.

A result record is identified by *what produced the number*, never by names
(issue 12 item 4, ``/work/notes/identity-spec.md``)::

    identity = {"protocol_hash", "method", "hparams", "teachers", "data", "seed",
                "entry", "default", "label"}

``entry`` is the sha256 of the canonical JSON of ``protocol_hash``, ``method``,
``hparams``, ``teachers`` and ``data`` (everything but the seed): seeds of the
same entry are one leaderboard row. ``default`` and ``label`` are derived from
them (a default entry runs the protocol's resolved hyperparameters with
suite-trained teachers only). Everything here is computable before any data is
loaded or any teacher trained, so the "already done" test of the store costs a
few file stats, not a training run.

Two digests feed the teacher caches:

* :func:`data_fingerprint`: which data a teacher, a cache or a record was made
  from (issue 12 item 5);
* :func:`training_code_digest`: which code trained a cached teacher or assistant
  (issue 11 §1: a teacher trained by different code is never silently reused).
  It keys the cache files only, not the record identity, so that a refactor of
  the engine retrains the teachers but does not split leaderboard entries: the
  accuracy gate, not the identity, judges whether the numbers still hold.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
import types
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent

#: content-hashed files of a real dataset (labels, splits, class lists); images are fingerprinted by stat
ANNOTATION_SUFFIXES = (".json", ".txt", ".csv", ".xml", ".yaml", ".yml", ".mat")
ANNOTATION_NAMES = ("batches.meta", "meta")
#: engine files whose code determines a trained teacher's weights (relative to the repository root)
TRAINING_FILES = ("bench/engine.py", "bench/teachers.py", "bench/distill.py", "bench/task.py", "bench/method.py")


def canonical_json(obj: Any) -> str:
    """The JSON every digest hashes: sorted keys, no spaces, NaN and Infinity refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def plain(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), so identities compare equal after a
    round trip through a record file."""
    return json.loads(json.dumps(obj, sort_keys=True))


def json_ready(value: Any) -> Any:
    """``value`` with every NaN float replaced by ``None`` ("not applicable"), as records
    and cache sidecars store it (tuples become lists)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def protocol_spec(protocol) -> dict[str, Any]:
    """The protocol's canonical dict: :meth:`Protocol.to_dict` minus the description and the seeds,
    and minus the optional fields left empty; exactly what :attr:`Protocol.spec_hash` hashes (a test
    checks ``sha256_json(protocol_spec(p)) == p.spec_hash``), so a gate can name changed fields."""
    spec = protocol.to_dict()
    spec.pop("description")
    spec.pop("seeds")
    for optional in ("ensemble", "assistants", "assistant_sweep", "normalization", "teacher_file", "feature_stages",
                     "deterministic"):
        if not spec[optional]:
            spec.pop(optional)
    for recipe in (spec, spec["teacher"], *spec.get("ensemble", ())):
        recipe["schedule"] = schedule_spec(recipe["schedule"])
    return json.loads(json.dumps(spec, sort_keys=True, default=list))


def schedule_spec(schedule) -> dict[str, Any]:
    """A :class:`~bench.protocol.Schedule` (or its dict) as hashes see it: the fields added for the full
    tier (:data:`~bench.protocol.SCHEDULE_OPTIONAL`: step decay, per-model rates) are left out while at
    their default, so every schedule that does not use them keeps the hash it had before they existed."""
    import dataclasses

    from bench.protocol import SCHEDULE_OPTIONAL, Schedule

    spec = dict(schedule) if isinstance(schedule, dict) else dataclasses.asdict(schedule)
    defaults = {f.name: f.default for f in dataclasses.fields(Schedule)}
    for name in SCHEDULE_OPTIONAL:
        if name in spec and plain(spec[name]) == plain(defaults[name]):
            spec.pop(name)
    return spec


def changed_fields(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields that differ between two protocol specs (nested dicts descended)."""
    names = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            names.append(f"{prefix}{key}")
    return names


# -- data --------------------------------------------------------------------------------------------

def data_fingerprint(dataset: dict[str, Any], root: str | os.PathLike | None = None) -> str:
    """sha256 naming the data a protocol reads, computed without loading it.

    *Generated* data (no ``root``): the dataset spec of the protocol plus the
    ``GENERATOR_VERSION`` of every generator module the dataset's loader uses;
    the generators are deterministic, so that is the data.

    *Real* data (``--data-root``): the dataset spec plus, for every file below
    the root (hidden files skipped), its relative path, size and modification
    time (ns), plus the sha256 of the content of the annotation files (JSON,
    text, CSV, XML, YAML, MAT, CIFAR ``batches.meta``). The trade-off: hashing
    every image of a real dataset (COCO: 19 GB) would cost minutes per run, a
    stat costs microseconds. Added, removed, renamed, resized or rewritten
    files are caught (a rewrite changes the mtime), and relabelling is caught
    whatever the timestamps say. Missed: an image edited in place with its size
    kept and its mtime restored on purpose. A copy made without keeping the
    timestamps (``cp`` without ``-p``) gets another fingerprint, so its
    teachers are retrained: the safe side. A root that does not exist gets a
    fingerprint of its path, so that the loader reports the missing folder.
    """
    spec = plain(dataset)
    if root is None:
        return sha256_json({"dataset": spec, "generators": _generator_versions(spec.get("name"))})
    return _real_fingerprint(spec, Path(root).resolve())


def _generator_versions(name: str | None) -> dict[str, Any]:
    """``{module: GENERATOR_VERSION}`` of the generator modules used by the loader registered as ``name``."""
    from bench.registry import DATASETS

    if name is None or name not in DATASETS:
        return {}
    module = sys.modules.get(DATASETS.get(name).__module__)
    found = {}
    for value in vars(module).values() if module else ():
        if isinstance(value, types.ModuleType) and hasattr(value, "GENERATOR_VERSION"):
            found[value.__name__] = value.GENERATOR_VERSION
    return found


def _real_fingerprint(spec: dict[str, Any], root: Path) -> str:
    if not root.exists():
        return sha256_json({"dataset": spec, "missing": str(root)})
    digest = hashlib.sha256(canonical_json({"dataset": spec}).encode())
    files = [root] if root.is_file() else sorted(
        Path(folder) / name
        for folder, dirs, names in os.walk(root, followlinks=True)
        if not any(part.startswith(".") for part in Path(folder).relative_to(root).parts)
        for name in names if not name.startswith(".")
    )
    for path in files:
        stat = path.stat()
        entry = [path.relative_to(root).as_posix() if path != root else path.name, stat.st_size, stat.st_mtime_ns]
        if path.suffix.lower() in ANNOTATION_SUFFIXES or path.name in ANNOTATION_NAMES:
            from bench.paths import sha256_file

            entry.append(sha256_file(path))
        digest.update((canonical_json(entry) + "\n").encode())
    return digest.hexdigest()


# -- code --------------------------------------------------------------------------------------------

def training_code_digest(task_name: str, *extra_modules: str) -> str:
    """sha256 over the source of the code that determines a trained teacher's (or assistant's)
    weights: the engine files in :data:`TRAINING_FILES`, every ``.py`` file of the task's package
    (its models, data, losses, augmentation; ``protocols.py`` excluded, since a recipe enters the
    cache key through its own hash) and the modules named in ``extra_modules`` (e.g. the ``kd``
    method that trains assistants). Paths are hashed relative to the repository with the content,
    so a moved checkout keeps its teachers."""
    from bench.registry import TASKS

    task_module = TASKS.get(task_name).__module__
    package = sys.modules[task_module.rsplit(".", 1)[0]] if "." in task_module else sys.modules[task_module]
    files = [_REPO / f for f in TRAINING_FILES]
    package_file = Path(package.__file__)
    if package_file.name == "__init__.py":
        files += [p for p in package_file.parent.rglob("*.py") if p.name != "protocols.py"]
    else:
        files.append(package_file)
    files += [Path(sys.modules[m].__file__) for m in extra_modules]
    return _digest_files(tuple(sorted(set(files))))


@functools.lru_cache(maxsize=64)
def _digest_files(files: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        name = path.relative_to(_REPO).as_posix() if path.is_relative_to(_REPO) else path.name
        digest.update(f"{name}\n{len(path.read_bytes())}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


# -- identity ----------------------------------------------------------------------------------------

def make_identity(protocol_hash: str, method: str, hparams: dict[str, Any], defaults: dict[str, Any],
                  teachers: list[dict[str, Any]], data: str, seed: int, precision: str = "fp32",
                  processes: int = 1) -> dict[str, Any]:
    """The identity block of a record (see the module docstring).

    ``defaults`` are the method's hyperparameters as the protocol resolves them
    without any ``--set``; ``teachers`` lists who teaches, in order, each
    ``{"source": "zoo", "recipe": hash}`` or ``{"source": "file", "sha256": hex}``.
    ``precision`` (:mod:`bench.precision`): a run trained at bf16 or fp16 is another entry (its identity
    names the precision and its label says it); fp32, the default, adds nothing, so identities made
    before precisions existed are unchanged. ``processes``: a DDP run's number of processes
    (:mod:`bench.distributed`), likewise named only when above 1.
    """
    core = plain({"protocol_hash": protocol_hash, "method": method, "hparams": hparams,
                  "teachers": teachers, "data": data, **({"precision": precision} if precision != "fp32" else {}),
                  **({"processes": processes} if processes > 1 else {})})
    defaults = plain(defaults)
    files = [t["sha256"][:8] for t in core["teachers"] if t["source"] == "file"]
    changed = [f"{k}={_show(v)}" for k, v in sorted(core["hparams"].items()) if defaults.get(k) != v]
    label = "; ".join(part for part in (", ".join(changed), f"teacher file {', '.join(files)}" if files else "",
                                        precision if precision != "fp32" else "",
                                        f"{processes} processes" if processes > 1 else "") if part)
    return {**core, "seed": int(seed), "entry": sha256_json(core),
            "default": not changed and not files and precision == "fp32" and processes == 1, "label": label}


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
