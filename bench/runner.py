"""Run one (protocol, method, seed) end to end and write its result record.

The steps: load the protocol's data; get the teacher (zoo or user file) if the
method needs one; the teacher-output cache where it applies; seed; build the
student and the method's extras; train; evaluate on the test split; write the
record atomically. Nothing is written unless the run finishes, so a crash or
Ctrl-C leaves no partial record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from bench import provenance
from bench.distill import Distiller
from bench.engine import peak_memory_mb, seed_everything, set_threads, train
from bench.errors import ConfigError
from bench.method import Method
from bench.profile import cached_profile
from bench.protocol import Protocol
from bench.registry import METHODS, TASKS
from bench.results import SCHEMA_VERSION, ResultsStore
from bench.task import Split, Task
from bench.teacher_cache import TeacherOutputCache
from bench.teachers import Teacher, TeacherZoo


@dataclass
class RunOptions:
    """How to run, as opposed to what (the protocol): none of this changes the numbers' meaning."""

    device: str = "cpu"
    teacher_file: str | None = None
    teacher_sha256: str | None = None
    teacher_output_cache: bool = True
    data_root: str | None = None
    progress: bool = False
    force: bool = False
    hparams: dict[str, Any] = field(default_factory=dict)


class Workspace:
    """Per-protocol state shared by its runs in one process: task, data, teacher, output cache."""

    def __init__(self, protocol: Protocol, options: RunOptions):
        self.protocol, self.options = protocol, options
        self.task: Task = TASKS.get(protocol.task)()
        self.splits: dict[str, Split] = self.task.load_splits(protocol.dataset, root=options.data_root)
        self._teacher: Teacher | None = None
        self._caches: dict[tuple[str, ...], TeacherOutputCache] = {}
        self.cache_build_forwards = 0

    def teacher(self) -> Teacher:
        if self._teacher is None:
            zoo, opts = TeacherZoo(), self.options
            if opts.teacher_file:
                self._teacher = zoo.from_file(self.protocol, self.task, self.splits, opts.teacher_file,
                                              opts.teacher_sha256)
            else:
                self._teacher = zoo.get(self.protocol, self.task, self.splits, progress=opts.progress)
        return self._teacher

    @property
    def input_size(self) -> tuple[int, ...]:
        return tuple(self.splits["train"].inputs.shape[1:])

    def profile(self, model_name: str) -> dict[str, Any]:
        """Efficiency of architecture ``model_name`` at the protocol's input and batch size (cached)."""
        classes = len(self.splits["train"].classes)
        return cached_profile(lambda: self.task.build_model(model_name, classes), model_name, self.input_size,
                              self.protocol.schedule.batch_size, self.options.device, self.protocol.threads)

    def teacher_output_cache(self, points: tuple[str, ...]) -> TeacherOutputCache:
        """The teacher's features at ``points`` for every training sample and augmentation variant."""
        key = tuple(sorted(points))
        if key not in self._caches:
            teacher = self.teacher()
            self._caches[key], forwards = TeacherOutputCache.load_or_build(
                teacher.model, teacher.model_name, teacher.sha256, self.splits["train"].source, self.task,
                self.splits["train"], self.protocol.augmentation, key,
            )
            self.cache_build_forwards += forwards
        return self._caches[key]


def build_method(protocol: Protocol, name: str, hparams: dict[str, Any] | None = None) -> Method:
    """The method ``name`` with the protocol's frozen overrides and the user's hparams."""
    method_cls = METHODS.get(name)
    applies = getattr(method_cls, "tasks", None)
    if applies is not None and protocol.task not in applies:
        raise ConfigError(f"method {name!r} does not apply to task {protocol.task!r} (applies to {', '.join(applies)})")
    return method_cls(**{**protocol.method_overrides.get(name, {}), **(hparams or {})})


def run_one(protocol: Protocol, method_name: str, seed: int, store: ResultsStore,
            options: RunOptions | None = None, workspace: Workspace | None = None) -> dict[str, Any] | None:
    """Train and evaluate one seed; return the record (``None`` if already stored and not forced)."""
    options = options or RunOptions()
    if store.exists(protocol.key, method_name, seed) and not options.force:
        return None
    method = build_method(protocol, method_name, options.hparams)
    set_threads(protocol.threads)
    ws = workspace or Workspace(protocol, options)
    task, splits, device = ws.task, ws.splits, torch.device(options.device)

    teacher = ws.teacher() if method.needs_teacher else None
    cache = None
    if teacher is not None and options.teacher_output_cache:
        cache = ws.teacher_output_cache(method.teacher_features)

    generator = seed_everything(seed)
    student = task.build_model(protocol.student, len(splits["train"].classes)).to(device)
    distiller = Distiller(task, student, protocol.student, method,
                          teacher=teacher.model.to(device) if teacher else None,
                          teacher_name=protocol.teacher.model, teacher_cache=cache)
    probe = task.collate(splits["train"], torch.arange(2), torch.zeros(2, dtype=torch.long), protocol.augmentation)
    distiller.build_extras(probe.to(device))
    stats = train(distiller, splits["train"], protocol.schedule, protocol.augmentation, generator,
                  progress=options.progress, desc=f"{method_name} seed {seed}", device=device)
    distiller.close()
    metrics = task.evaluate(student, splits["test"], protocol.schedule.batch_size)
    student_profile = ws.profile(protocol.student)
    set_threads(protocol.threads)
    record = {
        "schema": SCHEMA_VERSION,
        "protocol": {"name": protocol.name, "key": protocol.key, "version": protocol.version,
                     "hash": protocol.spec_hash, "task": protocol.task, "tier": protocol.tier},
        "method": {"name": method_name, "hparams": method.hparams},
        "seed": seed,
        "status": "verified",
        "metrics": metrics,
        "primary_metric": protocol.primary_metric,
        "teacher": {**teacher.describe(), "efficiency": ws.profile(teacher.model_name)} if teacher else None,
        "efficiency": {
            **{k: v for k, v in student_profile.items() if k not in ("model", "params")},
            "student_model": protocol.student,
            "student_params": sum(p.numel() for p in student.parameters()),
            "extra_params": distiller.extra_parameter_count(),
        },
        "cost": {
            "train_seconds": stats.wall_seconds,
            "steps": stats.steps,
            "teacher_forward_seconds": distiller.teacher_forward_seconds,
            "teacher_forwards": distiller.teacher_forwards,
            "teacher_output_cache": cache is not None,
            "peak_memory_mb": peak_memory_mb(),
        },
        "final_losses": stats.final_losses,
        "provenance": provenance.collect(options.device, protocol.threads),
    }
    store.write(record)
    return record
