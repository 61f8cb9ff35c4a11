"""Teachers shipped with the repository: the mini tier's trained teachers, pinned by sha256.

The standard benchmarks publish their teachers (RepDistiller's and mdistiller's checkpoint downloads);
KDBench ships the teachers, ensemble members and teacher assistants of its generated-data protocols in
``leaderboard/teachers/`` so that a new machine distils from the same teachers as every other machine
instead of spending most of the default suite retraining them.

``leaderboard/teachers/manifest.json`` maps a teacher's *recipe key* to its file: the hash that already
names a suite-trained teacher in a record's identity (:func:`bench.teachers.recipe_hash`; an assistant's
:func:`bench.teachers.assistant_hash`), the file's sha256, and where and how it was trained (protocol,
role, model, test metrics, training seconds, commit, platform). :class:`bench.teachers.TeacherZoo` looks
here before its cache and before training: a shipped file is used only when its sha256 is the
manifest's (else it warns and trains as before), and it is never written to by a run.

A shipped teacher is one instance of its recipe, trained at the commit and on the platform the manifest
names. ``kdbench teachers verify`` retrains each recipe with today's code and reports whether the result
is bit-identical (same platform, same code) or how far its test metrics are from the shipped file's;
``kdbench teachers ship`` trains (or takes from the cache) and adds a protocol's teachers.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from bench.paths import CacheIntegrityWarning, atomic_write_bytes, atomic_write_text, sha256_file

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "leaderboard" / "teachers"
MANIFEST = "manifest.json"


def shipped_root() -> Path:
    """``$KDBENCH_SHIPPED_TEACHERS`` (tests point it elsewhere), else the repository's ``leaderboard/teachers``."""
    return Path(os.environ.get("KDBENCH_SHIPPED_TEACHERS") or SHIPPED_DIR)


def manifest(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Recipe key -> entry; empty when nothing is shipped."""
    path = (root or shipped_root()) / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def shipped_file(key: str, root: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The shipped weights for recipe key ``key`` and their manifest entry, when the manifest names one;
    the caller loads it against the entry's sha256 (:func:`bench.teachers.load_state_dict_checked`) and
    reports a mismatch with :func:`unusable`."""
    root = root or shipped_root()
    entry = manifest(root).get(key)
    return None if entry is None else (root / entry["file"], entry)


def unusable(path: Path, entry: dict[str, Any], why: str) -> None:
    """Report a shipped file that fails its check (:class:`~bench.paths.CacheIntegrityWarning`): the recipe
    is trained instead."""
    warnings.warn(f"shipped teacher {path} is missing or its sha256 is not the manifest's "
                  f"({entry['sha256'][:12]}...: {why}); training the recipe instead", CacheIntegrityWarning,
                  stacklevel=3)


def ship(key: str, weights: Path, entry: dict[str, Any], root: Path | None = None) -> Path:
    """Copy ``weights`` (a teacher trained from recipe ``key``) into ``root`` as
    ``<role>-<model>-<sha256[:12]>.pt`` and record it in the manifest; returns the shipped path."""
    from bench.provenance import collect

    root = root or shipped_root()
    sha = sha256_file(weights)
    name = f"{entry['role']}-{entry['model']}-{sha[:12]}.pt"
    root.mkdir(parents=True, exist_ok=True)
    target = root / name
    if not target.is_file() or sha256_file(target) != sha:
        atomic_write_bytes(target, weights.read_bytes())
    env = collect("cpu", 1)
    entries = manifest(root)
    # the checkout and machine that shipped it (a teacher taken from the cache was trained on this machine,
    # possibly by an earlier commit whose training code the cache key matched)
    entries[key] = {**entry, "file": name, "sha256": sha, "shipped_from_commit": env.get("commit"),
                    "dirty": env.get("dirty"), "platform": env.get("platform"), "processor": env.get("processor"),
                    "packages": env.get("packages")}
    atomic_write_text(root / MANIFEST, json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return target


def teachers_of(protocol, options) -> list[tuple[str, Any]]:
    """Every (role, :class:`~bench.teachers.Teacher`) that teaches some default method of ``protocol``:
    its teacher, ensemble members and assistants, each recipe once (named "teacher" when the protocol's
    teacher is also an ensemble member), trained (or loaded) as a run would."""
    from bench.runner import Workspace, build_method
    from bench.suite import default_methods

    workspace = Workspace(protocol, options)
    found: dict[str, tuple[str, Any]] = {}
    for name in default_methods(protocol):
        for role, teacher in workspace.teaching(build_method(protocol, name)).stages:
            if teacher.recipe_key not in found or role == "teacher":  # the protocol's teacher is also a member
                found[teacher.recipe_key] = (role, teacher)
    return list(found.values())


def ship_protocol(protocol, options, root: Path | None = None) -> list[str]:
    """Ship every teacher of ``protocol`` (:func:`teachers_of`) not shipped yet; one line per teacher."""
    lines = []
    for role, teacher in teachers_of(protocol, options):
        if teacher.shipped:
            lines.append(f"{protocol.key} {role} {teacher.model_name}: already shipped ({Path(teacher.path).name})")
            continue
        entry = {"role": role, "model": teacher.model_name, "protocol": protocol.key, "metrics": teacher.metrics,
                 "train_seconds": teacher.train_seconds, "classes": list(teacher.classes or ()),
                 "seed": teacher.seed}
        target = ship(teacher.recipe_key, Path(teacher.path), entry, root)
        lines.append(f"{protocol.key} {role} {teacher.model_name}: shipped as {target.name}")
    return lines


def verify_protocol(protocol, options, cache: Path) -> tuple[list[str], bool]:
    """Retrain every shipped teacher of ``protocol`` from its recipe with today's code (cache folder
    ``cache``, shipped files unused) and compare: bit-identical, or the test metrics of both. Returns the
    report's lines and whether every teacher that should be bit-identical is (same platform, processor
    and packages as the manifest's entry)."""
    import dataclasses

    from bench.provenance import collect

    shipped = [(role, t) for role, t in teachers_of(protocol, options) if t.shipped]
    if not shipped:
        return [f"{protocol.key}: no shipped teachers"], True
    previous = os.environ.get("KDBENCH_CACHE")
    os.environ["KDBENCH_CACHE"] = str(cache)
    try:
        retrained = teachers_of(protocol, dataclasses.replace(options, shipped_teachers=False))
    finally:
        if previous is None:
            os.environ.pop("KDBENCH_CACHE")
        else:
            os.environ["KDBENCH_CACHE"] = previous
    env, entries, lines, ok = collect("cpu", 1), manifest(), [], True
    by_model = {(role, t.model_name): t for role, t in retrained}
    for role, teacher in shipped:
        entry = entries[teacher.recipe_key]
        again = by_model.get((role, teacher.model_name))
        same_env = all(entry.get(k) == env.get(k) for k in ("platform", "processor", "packages"))
        head = f"{protocol.key} {role} {teacher.model_name} ({entry['file']})"
        if again is None:
            lines.append(f"{head}: not retrained (no default method uses it now)")
        elif again.sha256 == teacher.sha256:
            lines.append(f"{head}: retrained bit-identical (sha256 {teacher.sha256[:12]})")
        else:
            metrics = ", ".join(f"{m} {teacher.metrics[m]:.2f} shipped vs {again.metrics[m]:.2f} retrained "
                                f"({again.metrics[m] - teacher.metrics[m]:+.2f})"
                                for m in teacher.metrics if isinstance(teacher.metrics[m], float | int))
            why = ("same platform, processor and packages: it should be bit-identical" if same_env else
                   "another platform, processor or package set than the shipped file's: compared by accuracy")
            lines.append(f"{head}: retrained differs (sha256 {again.sha256[:12]}; {why}); {metrics}")
            ok = ok and not same_env
    return lines, ok
