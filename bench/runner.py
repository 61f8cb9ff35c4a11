"""Run one (protocol, method, seed) end to end and write its result record.

The steps: compute the run's identity (:func:`run_identity`: protocol hash,
method, resolved hyperparameters, teachers, data fingerprint, seed) and stop if
the store already holds it; load the protocol's data; get the teacher (zoo or user file) if the
method needs one; the teacher-output cache where it applies; seed; build the
student and the method's extras; train; evaluate on the test split; write the
record atomically. Nothing is written unless the run finishes, so a crash or
Ctrl-C leaves no partial record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench import provenance
from bench.checkpoint import Checkpointing, checkpoint_path
from bench.distill import Distiller, EnsembleModel, TeacherInput
from bench.engine import (TrainStats, check_metric_range, peak_memory_mb, seed_everything, set_threads,
                          steps_per_epoch, train)
from bench.epoch_log import EpochLog, TensorBoardSink, csv_path
from bench.errors import ConfigError, TeacherMismatchError
from bench import distributed
from bench.device import configure_backends
from bench.identity import data_fingerprint, json_ready, make_identity, protocol_spec
from bench.method import DataInfo, Method
from bench.profile import cached_profile
from bench.protocol import Protocol
from bench.registry import METHODS
from bench.results import SCHEMA_VERSION, ResultsStore
from bench.streaming import Loading, StreamingSplit
from bench.task import Split, Task, make_task
from bench.teacher_cache import TeacherOutputCache
from bench.paths import sha256_file
from bench.teachers import Teacher, TeacherZoo, check_label_space, recipe_hash


@dataclass
class RunOptions:
    """How to run, as opposed to what (the protocol): none of this changes the numbers' meaning."""

    device: str = "cpu"
    teacher_file: str | None = None
    teacher_sha256: str | None = None
    #: user-given state dicts for the protocol's ensemble members, in the protocol's order
    ensemble_files: tuple[str, ...] = ()
    teacher_output_cache: bool = True
    data_root: str | None = None
    #: DataLoader worker processes for streamed datasets (None: :func:`bench.streaming.default_workers`)
    workers: int | None = None
    progress: bool = False
    force: bool = False
    hparams: dict[str, Any] = field(default_factory=dict)
    #: where the protocol came from when it is not registered (a ``--protocol-file``: path and sha256),
    #: named in the record's protocol block
    protocol_source: str | None = None
    #: use the repository's shipped teachers for the recipes they cover (:mod:`bench.shipped_teachers`);
    #: False trains every recipe (or takes it from the cache), as ``kdbench teachers verify`` does
    shipped_teachers: bool = True
    #: print a line per epoch of the student's training (``kdbench run`` when stdout is not a terminal)
    epoch_lines: bool = False
    #: evaluate the student on the validation split after every epoch, into the per-epoch log (its time
    #: is not training time; the run's numbers do not change)
    validate_epochs: bool = False
    #: save a checkpoint every this many epochs (:mod:`bench.checkpoint`); 0: none. A run whose checkpoint
    #: is found (a rerun after a kill) resumes from it whatever this says.
    checkpoint_every: int = 0
    #: the training's precision (:mod:`bench.precision`: fp32, bf16 or fp16); part of the run's identity
    precision: str = "fp32"
    #: also write the per-epoch log to TensorBoard under this folder (None: only the CSV)
    tensorboard: str | None = None

    def teacher_zoo(self) -> TeacherZoo:
        return TeacherZoo(shipped=self.shipped_teachers, device=self.device)


class Workspace:
    """Per-protocol state shared by its runs in one process: task, data, teacher, output cache."""

    def __init__(self, protocol: Protocol, options: RunOptions):
        self.protocol, self.options = protocol, options
        self.task: Task = make_task(protocol, Loading.for_device(options.device, options.workers))
        #: fingerprint of the data (bench.identity.data_fingerprint), taken before it is loaded
        self.data = data_fingerprint(protocol.dataset, options.data_root)
        self.splits: dict[str, Split] = self.task.load_splits(protocol.dataset, root=options.data_root)
        self._teacher: Teacher | None = None
        self._ensemble: list[Teacher] | None = None
        self._ensemble_metrics: dict[str, float] | None = None
        self._chains: dict[tuple, list[Teacher]] = {}
        self._caches: dict[tuple[str, tuple[str, ...]], TeacherOutputCache] = {}
        self.cache_build_forwards = 0

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.splits["train"].classes)

    def teacher(self) -> Teacher:
        """The protocol's teacher: the user's file, or trained by the suite and cached."""
        if self._teacher is None:
            zoo, opts = self.options.teacher_zoo(), self.options
            if opts.teacher_file:
                self._teacher = zoo.from_file(self.protocol, self.task, self.splits, opts.teacher_file,
                                              opts.teacher_sha256)
            else:
                self._teacher = zoo.get(self.protocol, self.task, self.splits, self.data, progress=opts.progress)
        return self._teacher

    def ensemble(self) -> list[Teacher]:
        """The protocol's ensemble, each member from the user's files or trained by the suite and cached.

        Every member must predict the dataset's classes; a member that does not
        stops the run before any training.
        """
        if self._ensemble is None:
            zoo, opts, recipes = self.options.teacher_zoo(), self.options, self.protocol.ensemble
            if opts.ensemble_files and len(opts.ensemble_files) != len(recipes):
                raise ConfigError(f"protocol {self.protocol.key!r} has {len(recipes)} ensemble teachers "
                                  f"({', '.join(r.model for r in recipes)}), but {len(opts.ensemble_files)} "
                                  "ensemble files were given")
            if opts.ensemble_files:
                members = [zoo.from_file(self.protocol, self.task, self.splits, path, model_name=recipe.model)
                           for path, recipe in zip(opts.ensemble_files, recipes, strict=True)]
            else:
                members = [zoo.get(self.protocol, self.task, self.splits, self.data, opts.progress, recipe)
                           for recipe in recipes]
            for i, member in enumerate(members):
                check_label_space(member, self.classes, f"ensemble teacher {i}")
            self._ensemble = members
        return self._ensemble

    def ensemble_metrics(self) -> dict[str, float]:
        """Test metrics of the ensemble itself (its members' averaged class distributions)."""
        if self._ensemble_metrics is None:
            model = EnsembleModel([m.model for m in self.ensemble()])
            self._ensemble_metrics = self.task.evaluate(model, self.splits["test"], self.protocol.schedule.batch_size)
        return self._ensemble_metrics

    def chain(self, assistants: tuple[str, ...], kd_hparams: dict[str, Any]) -> list[Teacher]:
        """``[teacher, assistant 1, ..., assistant k]``: each assistant trained by KD from the model
        before it (Mirzadeh et al. 2020), cached by its recipe and reused across seeds and methods."""
        key = (assistants, tuple(sorted(kd_hparams.items())))
        if key not in self._chains:
            validate_chain(self.task, self.protocol.teacher.model, assistants, self.protocol.student,
                           len(self.classes))
            models = [self.teacher()]
            zoo = self.options.teacher_zoo()
            for name in assistants:
                models.append(zoo.assistant(self.protocol, self.task, self.splits, self.data, name, models[-1],
                                            kd_hparams, progress=self.options.progress))
            self._chains[key] = models
        return self._chains[key]

    def validate(self, method: Method) -> None:
        """The checks that need no training, run before any teacher is trained: every model the run
        trains gets at least one step per epoch; a chain's sizes."""
        train_split = self.splits["train"]
        schedule = self.protocol.schedule
        steps_per_epoch(self.task, train_split, schedule.batch_size, f"student {self.protocol.student}",
                        schedule.drop_last)
        if method.needs_teacher:  # the protocol's teacher heads a chain too
            recipes = self.protocol.ensemble if method.multi_teacher else (self.protocol.teacher,)
            for recipe in recipes:
                steps_per_epoch(self.task, train_split, recipe.schedule.batch_size, f"teacher {recipe.model}",
                                recipe.schedule.drop_last)
        if method.assistant_chain:
            validate_chain(self.task, self.protocol.teacher.model, tuple(method.hparams["assistants"]),
                           self.protocol.student, len(self.classes))

    def teaching_models(self, method: Method) -> list[str]:
        """The architectures :meth:`teaching` returns for ``method``, known without training anything."""
        if not method.needs_teacher:
            return []
        if method.multi_teacher:
            return [recipe.model for recipe in self.protocol.ensemble]
        if method.assistant_chain:
            return [self.protocol.teacher.model, *method.hparams["assistants"]]
        return [self.protocol.teacher.model]

    def teaching(self, method: Method) -> Teaching:
        """Who teaches the student under ``method``: nobody, the teacher, a chain, or the ensemble."""
        if not method.needs_teacher:
            return Teaching("none", [])
        if method.multi_teacher:
            return Teaching("ensemble", [("member", t) for t in self.ensemble()], self.ensemble_metrics())
        if method.assistant_chain:
            chain = self.chain(tuple(method.hparams["assistants"]), kd_hparams_of(method))
            return Teaching("chain", [("teacher", chain[0]), *(("assistant", t) for t in chain[1:])])
        return Teaching("single", [("teacher", self.teacher())])

    @property
    def input_size(self) -> tuple[int, ...]:
        """One training sample's shape (no batch dimension), what the models are profiled at. Inputs
        held as a list of samples of different sizes (real COCO images) give the most common shape
        (the first seen of the most common, on a tie)."""
        from collections import Counter

        if isinstance(self.splits["train"], StreamingSplit):  # as the augmentation makes them, e.g. 224x224
            probe = self.task.collate(self.splits["train"], torch.arange(1), torch.zeros(1, dtype=torch.long),
                                      self.protocol.augmentation)
            return tuple(probe.inputs.shape[1:])
        inputs = self.splits["train"].inputs
        if isinstance(inputs, torch.Tensor):
            return tuple(inputs.shape[1:])
        if not len(inputs):
            raise ConfigError(f"protocol {self.protocol.key!r}: the training split holds no samples")
        counts = Counter(tuple(sample.shape) for sample in inputs)
        return max(counts, key=counts.__getitem__)

    def profile(self, model_name: str) -> dict[str, Any]:
        """Efficiency of architecture ``model_name`` at the protocol's input and batch size (cached)."""
        classes = len(self.splits["train"].classes)
        return cached_profile(lambda: self.task.build_model(model_name, classes), model_name, self.input_size,
                              self.protocol.schedule.batch_size, self.options.device, self.protocol.threads)

    def teacher_inputs(self, method: Method, device: torch.device | str = "cpu",
                       cached: bool | None = None) -> tuple[Teaching, list[TeacherInput]]:
        """Who teaches under ``method`` and what the Distiller gets: the models the student learns
        from, with their output caches unless ``cached`` is False (default: :attr:`uses_output_cache`)."""
        teaching = self.teaching(method)
        cached = self.uses_output_cache if cached is None else cached and self.augmentation_is_finite
        inputs = [TeacherInput(t.model.to(device), t.model_name,
                               self.teacher_output_cache(method.teacher_features, t) if cached else None)
                  for t in teaching.teachers_of_student]
        return teaching, inputs

    @property
    def augmentation_is_finite(self) -> bool:
        """Whether the protocol's augmentation has a finite variant set, so that teacher outputs can be
        cached (random crops have none: the teacher then runs live)."""
        return self.task.num_augment_variants(self.protocol.augmentation) is not None

    @property
    def uses_output_cache(self) -> bool:
        """Whether the student's teachers answer from the teacher-output cache: asked for by the run
        options and possible under the protocol's augmentation."""
        return self.options.teacher_output_cache and self.augmentation_is_finite

    def teacher_output_cache(self, points: tuple[str, ...], teacher: Teacher | None = None) -> TeacherOutputCache:
        """``teacher``'s (default: the protocol teacher's) features at ``points`` for every training
        sample and augmentation variant."""
        teacher = teacher or self.teacher()
        key = (teacher.sha256, tuple(sorted(points)))
        if key not in self._caches:
            self._caches[key], forwards = TeacherOutputCache.load_or_build(
                teacher.model, teacher.model_name, teacher.sha256, self.data, self.task,
                self.splits["train"], self.protocol.augmentation, key[1],
            )
            self.cache_build_forwards += forwards
        return self._caches[key]


@dataclass
class Teaching:
    """Who teaches a run's student, in order: ``stages`` are (role, teacher) pairs with role
    ``"teacher"``, ``"assistant"`` or ``"member"``. The student learns from the last stage of a
    chain, or from every member of an ensemble."""

    kind: str  # "none", "single", "chain" or "ensemble"
    stages: list[tuple[str, Teacher]]
    ensemble_metrics: dict[str, float] | None = None

    @property
    def teachers_of_student(self) -> list[Teacher]:
        if self.kind == "ensemble":
            return [t for _, t in self.stages]
        return [self.stages[-1][1]] if self.stages else []

    def describe(self, profile) -> dict[str, Any]:
        """The record's ``teaching`` block (``profile(model name)`` gives each model's efficiency)."""
        block: dict[str, Any] = {"kind": self.kind, "stages": [
            {"role": role, **t.describe(), "efficiency": profile(t.model_name)} for role, t in self.stages]}
        if self.ensemble_metrics is not None:
            block["ensemble_metrics"] = self.ensemble_metrics
        return block


def kd_hparams_of(method: Method) -> dict[str, Any]:
    """The KD hyperparameters a chain's assistants are trained with (the method's own T and alpha)."""
    return {"T": method.hparams["T"], "alpha": method.hparams["alpha"]}


def validate_chain(task: Task, teacher: str, assistants: tuple[str, ...], student: str, num_classes: int) -> None:
    """Reject a chain unless every assistant is strictly smaller than the model before it and larger
    than the one after (by parameter count), naming the offending link; nothing is trained first."""
    names = [teacher, *assistants, student]
    sizes = [sum(p.numel() for p in task.build_model(n, num_classes).parameters()) for n in names]
    for i in range(1, len(names) - 1):
        if not sizes[i - 1] > sizes[i] > sizes[i + 1]:
            chain = " -> ".join(f"{n} ({s / 1e6:.3f} M params)" for n, s in zip(names, sizes, strict=True))
            raise ConfigError(f"teacher-assistant chain {chain}: assistant {names[i]} is not between "
                              f"{names[i - 1]} and {names[i + 1]} in size; each assistant must be smaller than "
                              "the model that teaches it and larger than the one it teaches")


def build_method(protocol: Protocol, name: str, hparams: dict[str, Any] | None = None) -> Method:
    """The method ``name`` with the protocol's frozen overrides and the user's hparams."""
    method_cls = METHODS.get(name)
    unmet = method_cls.unmet_requirement(protocol)
    if unmet:
        raise ConfigError(f"method {name!r} {unmet}")
    shared = {"stages": protocol.feature_stages} if protocol.feature_stages and "stages" in method_cls.defaults else {}
    method = method_cls(**{**shared, **protocol.method_overrides.get(name, {}), **(hparams or {})})
    if method_cls.assistant_chain:  # resolved here so that the record names the chain it used
        chain = method.hparams.get("assistants") or protocol.assistants
        method.hparams["assistants"] = [chain] if isinstance(chain, str) else list(chain)
    if method_cls.init_stage and method.hparams.get("init_epochs") is None:
        # RepDistiller's init stage is 30 epochs of a 240-epoch run; scaled so, at least one epoch
        method.hparams["init_epochs"] = max(1, round(protocol.schedule.epochs * 30 / 240))
    return method


def teacher_identities(protocol: Protocol, method: Method, options: RunOptions, data: str) -> list[dict[str, Any]]:
    """Who teaches under ``method``, in order, as the identity names them (no training needed): a
    zoo teacher by its recipe hash (which holds the data fingerprint), a user file by its sha256."""
    if not method.needs_teacher:
        return []
    if method.multi_teacher:
        if options.ensemble_files:
            return [_file_identity(path) for path in options.ensemble_files]
        return [{"source": "zoo", "recipe": recipe_hash(protocol, data, recipe)} for recipe in protocol.ensemble]
    if protocol.teacher_file:
        return [_pinned_file_identity(protocol, options.teacher_file)]
    if options.teacher_file:
        return [_file_identity(options.teacher_file)]
    return [{"source": "zoo", "recipe": recipe_hash(protocol, data)}]


def _pinned_file_identity(protocol: Protocol, path: str | None) -> dict[str, Any]:
    """The identity of the teacher file a protocol pins (``Protocol.teacher_file``): the user must give
    it, and its sha256 must start with the prefix the pinned name holds; the suite never trains it."""
    from bench.teacher_dir import pinned_prefix

    if not path:
        raise ConfigError(f"protocol {protocol.key!r} takes its teacher from the file {protocol.teacher_file} "
                          f"({protocol.teacher.model}), which the suite does not train: give it with --teacher FILE "
                          "(kdbench run) or --teacher-dir DIR (kdbench suite)")
    identity = _file_identity(path)
    prefix = pinned_prefix(protocol.teacher_file)
    if not identity["sha256"].startswith(prefix):
        raise TeacherMismatchError(f"teacher file {path}: sha256 {identity['sha256']} does not start with "
                                   f"{prefix}, which protocol {protocol.key!r} pins ({protocol.teacher_file}); "
                                   "a different or damaged file")
    return identity


def _file_identity(path: str) -> dict[str, Any]:
    if not Path(path).is_file():
        raise TeacherMismatchError(f"teacher file {path} does not exist")
    return {"source": "file", "sha256": sha256_file(Path(path))}


def run_identity(protocol: Protocol, method_name: str, seed: int, options: RunOptions | None = None,
                 data: str | None = None) -> dict[str, Any]:
    """The identity block of the record that ``run_one`` would write (``bench.identity``), computed
    before any data is loaded or teacher trained; ``data`` is the data fingerprint if already known."""
    options = options or RunOptions()
    method = build_method(protocol, method_name, options.hparams)
    data = data if data is not None else data_fingerprint(protocol.dataset, options.data_root)
    return make_identity(protocol.spec_hash, method_name, method.hparams, build_method(protocol, method_name).hparams,
                         teacher_identities(protocol, method, options, data), data, seed, options.precision,
                         distributed.world().size)


def bind_training_data(method: Method, task: Task, split: Split | StreamingSplit, schedule: Any) -> DataInfo:
    """Tell ``method`` the training data and schedule of its main run (:meth:`Method.bind_data`),
    before its extras are built; returns what it was told."""
    targets = split.targets
    labels = targets if isinstance(targets, torch.Tensor) and targets.ndim == 1 and not targets.is_floating_point() \
        else None
    data = DataInfo(num_samples=len(split), num_classes=len(split.classes),
                    steps_per_epoch=steps_per_epoch(task, split, schedule.batch_size, "the student",
                                                    schedule.drop_last),
                    epochs=schedule.epochs, labels=labels)
    method.bind_data(data)
    return data


def evaluate_on_rank_zero(task: Task, model: torch.nn.Module, split: Split, batch_size: int) -> dict[str, float]:
    """``task.evaluate`` of the whole split; under DDP computed by rank 0 and broadcast to every rank."""
    metrics = task.evaluate(model, split, batch_size) if distributed.world().is_main else None
    return distributed.broadcast_object(metrics)


def run_one(protocol: Protocol, method_name: str, seed: int, store: ResultsStore,
            options: RunOptions | None = None, workspace: Workspace | None = None) -> dict[str, Any] | None:
    """Train and evaluate one seed; return the record (``None`` if its identity is already stored
    and not forced, and on every DDP rank but 0: :mod:`bench.distributed`)."""
    options = options or RunOptions()
    identity = run_identity(protocol, method_name, seed, options, workspace.data if workspace else None)
    if not options.force and store.exists(protocol.key, identity):
        return None
    method = build_method(protocol, method_name, options.hparams)
    set_threads(protocol.threads)
    backends = configure_backends(options.device, protocol.deterministic)
    world = distributed.world()
    distributed.check_batch_size(protocol.schedule.batch_size)
    ws = workspace or Workspace(protocol, options)
    task, splits, device = ws.task, ws.splits, torch.device(options.device)
    ws.validate(method)

    with distributed.rank_zero_first():  # under DDP: rank 0 trains or loads the teachers into the cache
        teaching, inputs = ws.teacher_inputs(method, device)

    generator = seed_everything(seed)
    student = task.build_model(protocol.student, len(splits["train"].classes)).to(device)
    distiller = Distiller(task, student, protocol.student, method, inputs)
    bind_training_data(method, task, splits["train"], protocol.schedule)
    probe = task.collate(splits["train"], torch.arange(2), torch.zeros(2, dtype=torch.long), protocol.augmentation)
    distiller.build_extras(probe.to(device))
    validate = None
    if options.validate_epochs and len(splits.get("val", ())):
        def validate() -> dict[str, float]:
            return evaluate_on_rank_zero(task, student, splits["val"], protocol.schedule.batch_size)
    record_path = store.path(protocol.key, identity)
    sink = None
    if options.tensorboard:
        sink = TensorBoardSink(Path(options.tensorboard) / record_path.relative_to(store.root).with_suffix(""))
    log = EpochLog(validate=validate, echo=options.epoch_lines, label=f"{protocol.key} {method_name} seed {seed} ",
                   tensorboard=sink)
    checkpoint = Checkpointing.open(checkpoint_path(record_path), options.checkpoint_every,
                                    identity)
    init_stats = None
    if method.init_stage and method.hparams["init_epochs"] > 0:
        if checkpoint.resumed_stage == "main":  # the init stage was done before the checkpoint
            init_stats = TrainStats(**checkpoint.carry["init_stats"])
        else:
            init_stats = train(distiller, splits["train"], protocol.schedule, protocol.augmentation, generator,
                               progress=options.progress, desc=f"{method_name} init seed {seed}", device=device,
                               model_name=protocol.student, stage="init", log=log, checkpoint=checkpoint,
                               precision=options.precision)
            checkpoint.carry["init_stats"] = dataclasses.asdict(init_stats)
    stats = train(distiller, splits["train"], protocol.schedule, protocol.augmentation, generator,
                  progress=options.progress, desc=f"{method_name} seed {seed}", device=device,
                  model_name=protocol.student, log=log, checkpoint=checkpoint, precision=options.precision)
    distiller.close()
    metrics = evaluate_on_rank_zero(task, student, splits["test"], protocol.schedule.batch_size)
    if not world.is_main:  # rank 0 alone writes the record, its log and removes the checkpoint
        log.close()
        return None
    check_metric_range(task, metrics)
    student_profile = ws.profile(protocol.student)
    set_threads(protocol.threads)
    top = teaching.stages[0][1] if teaching.kind in ("single", "chain") else None
    stages = [{"stage": role, "model": t.model_name, "train_seconds": t.train_seconds} for role, t in teaching.stages]
    if init_stats is not None:  # a two-stage method's init stage (Method.init_stage)
        stages.append({"stage": "init", "model": protocol.student, "train_seconds": init_stats.wall_seconds,
                       "steps": init_stats.steps})
    stages.append({"stage": "student", "model": protocol.student, "train_seconds": stats.wall_seconds})
    record = {
        "schema": SCHEMA_VERSION,
        "protocol": {"name": protocol.name, "key": protocol.key, "version": protocol.version,
                     "hash": protocol.spec_hash, "task": protocol.task, "tier": protocol.tier,
                     "spec": protocol_spec(protocol),
                     **({"source": options.protocol_source} if options.protocol_source else {})},
        "method": {"name": method_name, "hparams": method.hparams},
        "identity": identity,
        "seed": seed,
        "status": "claimed",
        "metrics": metrics,
        "primary_metric": protocol.primary_metric,
        "teacher": {**top.describe(), "efficiency": ws.profile(top.model_name)} if top else None,
        "teaching": teaching.describe(ws.profile),
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
            # true only when the teachers' outputs did come from the cache (never under random crops)
            "teacher_output_cache": any(i.cache is not None for i in inputs),
            "peak_memory_mb": peak_memory_mb(),
            "stages": stages,
            "total_train_seconds": sum(s["train_seconds"] for s in stages),
        },
        "final_losses": stats.final_losses,
        "precision": options.precision,
        "provenance": {**provenance.collect(options.device, protocol.threads), "backends": backends,
                       "processes": world.size},
    }
    record = json_ready(record)  # a metric that does not apply (NaN) is stored as null
    log.write_csv(csv_path(store.write(record)))
    log.close()
    checkpoint.remove()
    return record
