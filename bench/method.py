"""The method contract: one small class per distillation method.

A method declares its hyperparameter defaults (with the paper's values and a
reference in its docstring), the feature points it reads from the student and
the teacher (``"logits"``, ``"backbone.out"``, ...), may build extra trainable
modules from the recorded shapes, and returns a dict of named loss terms that
the engine sums. *Where* features are read is the task's business (feature
point -> module path); *what loss* is applied is the method's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from bench.errors import ConfigError


@dataclass
class LossInputs:
    """Everything a method's loss may look at for one batch."""

    student: dict[str, torch.Tensor]
    teacher: dict[str, torch.Tensor]
    targets: Any
    task_losses: dict[str, torch.Tensor]
    #: the task and the batch's model inputs, for methods that need task geometry (e.g. anchors)
    task: Any = None
    inputs: Any = None
    #: every teacher's features, in the protocol's ensemble order (``[teacher]`` for one teacher)
    teachers: list[dict[str, torch.Tensor]] | None = None
    #: the batch's dataset indices (positions in the training split, on the CPU as the batch keeps
    #: them), for methods that keep per-sample state such as CRD's memory bank; None when a task's
    #: batches carry none
    indices: torch.Tensor | None = None


@dataclass(frozen=True)
class DataInfo:
    """The training data a method will see, told to it before its extras are built
    (:meth:`Method.bind_data`): a memory bank's size (CRD), a warm-up's length in epochs (DKD)."""

    num_samples: int
    num_classes: int
    #: the main run's optimizer steps per epoch and its epochs (``after_step(step)`` counts the steps)
    steps_per_epoch: int
    epochs: int
    #: the training split's class labels, one per sample in ``LossInputs.indices``' numbering, when
    #: the task's targets are class ids (classification), else None
    labels: torch.Tensor | None = None

    def epoch_of(self, steps_done: int) -> int:
        """The 1-based epoch the next step belongs to, after ``steps_done`` steps (mdistiller's ``epoch``)."""
        return steps_done // max(self.steps_per_epoch, 1) + 1


class Method:
    """Base class; subclasses register with ``@METHODS.register("name")``."""

    #: hyperparameter name -> default value (the paper's). A value given for it (``--set``, a
    #: protocol override) must have the default's type (an int is accepted for a float).
    defaults: ClassVar[dict[str, Any]] = {}
    #: hyperparameter name -> the interval its value must lie in, as ``"(0, inf)"`` or ``"[0, 1]"``
    #: (square bracket: the end is allowed), checked before anything is trained.
    ranges: ClassVar[dict[str, str]] = {}
    #: feature points read from the student (``"logits"`` is the model output).
    student_features: ClassVar[tuple[str, ...]] = ("logits",)
    #: feature points read from the teacher; empty means no teacher is needed.
    teacher_features: ClassVar[tuple[str, ...]] = ()
    #: the tasks the method applies to; ``None`` means every task.
    tasks: ClassVar[tuple[str, ...] | None] = None
    #: the tiers whose *default* suite runs the method (``None``: every tier it applies to). A method
    #: joins the mini tier's default once its mini numbers are published, so the first README command
    #: stays as long as the README says and runs what the published tables show; ``kdbench suite
    #: --methods NAME`` runs it on any protocol it applies to.
    default_tiers: ClassVar[tuple[str, ...] | None] = None
    #: learns from the protocol's ``ensemble`` (all its teachers' features in ``LossInputs.teachers``)
    multi_teacher: ClassVar[bool] = False
    #: learns from the last model of the protocol's teacher-assistant chain (``Protocol.assistants``)
    assistant_chain: ClassVar[bool] = False
    #: online distillation (DML): the Distiller builds a peer, a second model of the student's
    #: architecture initialised from a seed derived from the run's, and hands it to :meth:`bind_peer`
    peer_student: ClassVar[bool] = False
    #: each training batch holds B samples then B same-class partners, partner i of sample i (CS-KD's
    #: ``PairBatchSampler``; :meth:`bench.task.Task.pair_batches`)
    same_class_pairs: ClassVar[bool] = False
    #: a two-stage method: before the main run the engine trains :meth:`init_parameters` on
    #: :meth:`init_losses` for ``hparams["init_epochs"]`` epochs (``None``: resolved by the runner to
    #: RepDistiller's 30 of 240 epochs, scaled to the protocol) at a constant rate of the schedule's
    #: base rate times :attr:`init_lr_factor`, through the same train loop, recorded as stage ``init``
    init_stage: ClassVar[bool] = False
    init_lr_factor: ClassVar[float] = 1.0

    def __init__(self, **hparams: Any):
        unknown = sorted(set(hparams) - set(self.defaults))
        name = self.registered_name()
        if unknown:
            raise ConfigError(
                f"method {name}: unknown hyperparameter {unknown[0]!r}; "
                f"valid: {', '.join(sorted(self.defaults)) or '(none)'}"
            )
        for key, value in hparams.items():
            check_hparam(name, key, value, self.defaults[key], self.ranges.get(key))
        self.hparams: dict[str, Any] = {**self.defaults, **hparams}

    @classmethod
    def registered_name(cls) -> str:
        """The name users type (``kd``), as registered in ``METHODS``; the class name if unregistered."""
        from bench.registry import METHODS

        return next((n for n in METHODS.names() if METHODS.get(n) is cls), cls.__name__)

    @classmethod
    def unmet_requirement(cls, protocol: Any) -> str | None:
        """Why this method cannot run on ``protocol`` (its task, a missing ensemble or chain), else None."""
        if cls.tasks is not None and protocol.task not in cls.tasks:
            return f"does not apply to task {protocol.task!r} (applies to {', '.join(cls.tasks)})"
        if cls.multi_teacher and not protocol.ensemble:
            return f"needs a teacher ensemble, and protocol {protocol.key!r} declares none (key 'ensemble')"
        if cls.assistant_chain and not protocol.assistants:
            return (f"needs a teacher-assistant chain, and protocol {protocol.key!r} declares none "
                    "(key 'assistants')")
        return None

    @property
    def needs_teacher(self) -> bool:
        return bool(self.teacher_features)

    def build_extras(
        self, student_shapes: dict[str, torch.Size], teacher_shapes: dict[str, torch.Size]
    ) -> nn.Module | None:
        """Extra trainable modules (adapters, projectors); counted as extra parameters.

        For a multi-teacher method ``teacher_shapes`` is a list with one dict per teacher.
        """
        return None

    def losses(self, inputs: LossInputs, extras: nn.Module | None) -> dict[str, torch.Tensor]:
        """Named loss terms for one batch; the engine sums them."""
        raise NotImplementedError

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters the method trains with its own optimizer in :meth:`after_step` (e.g. a
        discriminator): counted as extra parameters, never stepped by the student's optimizer."""
        return []

    def after_step(self, step: int) -> None:
        """Engine hook, called after each student optimizer step (a method's own update goes here)."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint (:mod:`bench.checkpoint`) must hold of the method's own training state beyond
        its extras: a peer or a discriminator and their optimisers, a step count. Tensors, numbers, lists
        and dicts only (checkpoints load weights-only). Empty for a method without such state."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` when a run resumes from a checkpoint."""

    def forward_train(self, task: Any, model: nn.Module, batch: Any) -> tuple[Any, dict[str, torch.Tensor]]:
        """The student's training forward pass (output, task loss terms); the task's unless a method
        needs another (CS-KD: the partner half without gradients)."""
        return task.forward_train(model, batch)

    def bind_peer(self, peer: nn.Module, student: nn.Module, task: Any) -> None:
        """Receive the peer model (:attr:`peer_student`), with the student and the task."""
        raise NotImplementedError(f"{type(self).__name__} sets peer_student but does not take a peer")

    def bind_optimizer(self, make: Any) -> None:
        """Engine hook, called once before the main run with ``make(params) -> (optimizer, rate scheduler)``,
        the student's optimizer and schedule for other parameters (a peer's); step both in :meth:`after_step`."""

    def init_parameters(self, student: nn.Module, extras: nn.Module | None) -> list[nn.Parameter]:
        """What the init stage trains (:attr:`init_stage`): by default the student and the extras (a
        parameter the init loss does not reach gets no gradient, so SGD leaves it as it is)."""
        return list(student.parameters()) + ([] if extras is None else list(extras.parameters()))

    def init_losses(self, inputs: LossInputs, extras: nn.Module | None) -> dict[str, torch.Tensor]:
        """Named loss terms of one init-stage batch (:attr:`init_stage`)."""
        raise NotImplementedError

    #: what :meth:`bind_data` was told (None until then)
    data: DataInfo | None = None

    def bind_data(self, data: DataInfo) -> None:
        """Engine hook, called once by the runner before :meth:`build_extras` with the training data's
        size, labels and schedule; stored as :attr:`data`. Override to check or derive more."""
        self.data = data


def _kind(value: Any) -> str:
    """The type class a hyperparameter value belongs to: bool, number, str, sequence, or other."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list | tuple):
        return "sequence"
    return type(value).__name__


def check_hparam(method: str, key: str, value: Any, default: Any, interval: str | None) -> None:
    """Raise :class:`ConfigError` unless ``value`` has the default's type (a ``None`` default takes
    any) and lies in ``interval`` (``"(lo, hi)"``, square brackets for closed ends, ``inf`` allowed)."""
    if default is not None and _kind(value) != _kind(default):
        raise ConfigError(f"method {method}: hyperparameter {key!r} must be a {_kind(default)} like its "
                          f"default {default!r}, got {value!r} ({type(value).__name__})")
    if interval is None or (value is None and default is None):  # None: "derived from the protocol"
        return
    lo_closed, hi_closed = interval[0] == "[", interval[-1] == "]"
    lo, hi = (float(x) for x in interval[1:-1].split(","))
    above = value >= lo if lo_closed else value > lo
    below = value <= hi if hi_closed else value < hi
    if not (above and below):  # NaN fails both
        raise ConfigError(f"method {method}: hyperparameter {key!r} = {value!r} is outside {interval}")
