"""What ``kdbench suite`` does with full-tier protocols: run those whose data (and pinned teacher) is
there, skip the others saying why.

A full protocol reads a real dataset from ``--data-root``. A protocol whose models cannot be built in this
environment (an OpenMMLab model without OpenMMLab: ``unavailable()`` of the registered model) is skipped
saying so. Before anything runs, each one's dataset is
checked (:func:`bench.datacheck.check_data`, once per dataset): missing or incomplete data skips the
protocol with the check's reason, and so does a missing ``--data-root``; a skip is never an error, so
no suite fails because full data is absent. A protocol that pins its teacher file
(``Protocol.teacher_file``) is skipped unless ``--teacher-dir`` holds it; other teachers are looked up
in ``--teacher-dir`` too (:mod:`bench.teacher_dir`) and trained by the suite when not found.

Each planned protocol reads its dataset's own folder (:func:`bench.datacheck.locate_data_root`), so one
``--data-root`` may hold several datasets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.datacheck import DATA_CHECKS, DataReport, check_data, locate_data_root
from bench.protocol import REAL_DATASETS, Protocol
from bench.teacher_dir import find_teacher_file, teacher_candidates


@dataclass(frozen=True)
class Planned:
    """A full protocol that can run: the folder it reads and its teacher file, if one was found."""

    protocol: Protocol
    data_root: str
    teacher_file: str | None = None


@dataclass(frozen=True)
class Skipped:
    protocol: Protocol
    reason: str


def plan_full(protocols: list[Protocol], data_root: str | None,
              teacher_dir: str | None = None) -> tuple[list[Planned], list[Skipped]]:
    """Split ``protocols`` (full tier, each reading its own real dataset) into those that can run and
    those skipped with their reason; nothing is trained or loaded but the data checks."""
    planned, skipped = [], []
    reports: dict[str, DataReport] = {}
    for protocol in protocols:
        missing = unbuildable_models(protocol)
        if missing:
            skipped.append(Skipped(protocol, missing))
            continue
        name = protocol.dataset.get("name")
        layout = DATA_CHECKS.get(name)().layout if name in DATA_CHECKS else REAL_DATASETS.get(
            protocol.task, {}).get(name, "")
        if data_root is None:
            skipped.append(Skipped(protocol, f"reads the real dataset {name!r} and no --data-root was given"
                                             + (f" (expected layout: {layout})" if layout else "")))
            continue
        if name in DATA_CHECKS:
            report = reports.setdefault(name, check_data(name, data_root))
            if not report.complete:
                skipped.append(Skipped(protocol, report.summary()))
                continue
        teacher = find_teacher_file(teacher_dir, protocol) if teacher_dir else None
        if protocol.teacher_file and teacher is None:
            where = (f"--teacher-dir {teacher_dir} has no {teacher_candidates(teacher_dir, protocol)[0].name}"
                     if teacher_dir else "no --teacher-dir was given")
            skipped.append(Skipped(protocol, f"pins its teacher to the file {protocol.teacher_file} and {where}"))
            continue
        planned.append(Planned(protocol, locate_data_root(name, data_root), str(teacher) if teacher else None))
    return planned, skipped


def unbuildable_models(protocol: Protocol) -> str | None:
    """Why a model of ``protocol`` cannot be built in this environment (a registered model that says so through
    ``unavailable()``, e.g. an OpenMMLab model without OpenMMLab installed), or None."""
    from bench.registry import MODELS

    models = [protocol.student, protocol.teacher.model, *(r.model for r in protocol.ensemble)]
    for model in models:
        reason = getattr(MODELS.get(model), "unavailable", lambda: None)() if model in MODELS else None
        if reason:
            return f"its model {model} cannot be built here: {reason}"
    return None


def describe_plan(planned: list[Planned], skipped: list[Skipped]) -> str:
    """What the suite will run and skip, one line per protocol."""
    lines = [f"full tier: {len(planned)} protocol(s) to run, {len(skipped)} skipped"]
    for p in planned:
        teacher = f"teacher file {p.teacher_file}" if p.teacher_file else "teacher trained by the suite (cached)"
        lines.append(f"  run  {p.protocol.key}: data {Path(p.data_root)}, {teacher}")
    lines += [f"  skip {s.protocol.key}: {s.reason}" for s in skipped]
    return "\n".join(lines)
