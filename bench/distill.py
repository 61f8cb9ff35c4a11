"""The Distiller: teacher + student + method, with features recorded by module path.

Features are read with forward hooks on ``model.get_submodule(path)``, so any
off-the-shelf model works unmodified. The teacher is frozen (no gradients, eval
mode); its outputs may come from a :class:`~bench.teacher_cache.TeacherOutputCache`
instead of a live forward pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.method import LossInputs, Method
from bench.precision import DEFAULT as FP32
from bench.precision import as_float32, autocast, full_precision
from bench.task import Batch, Task, to_device


class FeatureRecorder:
    """Records the outputs of named submodules during a forward pass."""

    def __init__(self, model: nn.Module, points: dict[str, str]):
        self.model = model
        self.points = {name: path for name, path in points.items() if path}
        self.features: dict[str, torch.Tensor] = {}
        self._handles = []
        for name, path in self.points.items():
            module = model.get_submodule(path)
            self._handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            self.features[name] = output

        return hook

    def record(self, forward: Callable[[], Any]) -> tuple[Any, dict[str, torch.Tensor]]:
        """Run ``forward()`` (a pass through the model) and return its result and the recorded features."""
        self.features = {}
        result = forward()
        features, self.features = self.features, {}
        return result, features

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


@dataclass
class TeacherInput:
    """One teacher handed to the :class:`Distiller`: the model, its architecture name (for the
    task's feature points) and optionally its precomputed outputs."""

    model: nn.Module
    name: str
    cache: Any = None  # a TeacherOutputCache or None (live forward passes)


class Distiller(nn.Module):
    """Computes the named loss terms of one batch for a student taught by one teacher or an ensemble.

    Single-teacher methods get exactly one teacher (for a TAKD chain, the last
    assistant); multi-teacher methods (``Method.multi_teacher``) get two or more,
    whose features arrive in ``LossInputs.teachers`` in the given order.
    """

    def __init__(self, task: Task, student: nn.Module, student_name: str, method: Method,
                 teachers: Sequence[TeacherInput] = ()):
        super().__init__()
        self.task, self.method = task, method
        self.student, self.student_name = student, student_name
        #: "main", or "init" while the engine runs a two-stage method's init stage (``Method.init_stage``)
        self.stage = "main"
        #: the forward passes' precision (:mod:`bench.precision`); the losses are always computed in fp32
        self.precision = FP32
        self.student_recorder = FeatureRecorder(
            student, {p: task.module_path(student_name, p) for p in method.student_features}
        )
        self.teacher_forward_seconds = 0.0
        self.teacher_forwards = 0
        expected = "two or more" if method.multi_teacher else "one"
        if method.needs_teacher and (len(teachers) < 2 if method.multi_teacher else len(teachers) != 1):
            raise ValueError(f"method {type(method).__name__} needs {expected} teacher(s), got {len(teachers)}")
        if not method.needs_teacher:
            teachers = ()
        # Not submodules: their parameters must never reach the optimiser or a state dict.
        self.__dict__["teachers"] = list(teachers)
        self.teacher_recorders = []
        for teacher in self.teachers:
            freeze(teacher.model)
            self.teacher_recorders.append(FeatureRecorder(
                teacher.model, {p: task.module_path(teacher.name, p) for p in method.teacher_features}))
        self.extras: nn.Module | None = None

    def build_extras(self, sample: Batch) -> None:
        """Run one probe forward pass to learn feature shapes and let the method build extras.

        Multi-teacher methods receive a list of teacher shape dicts, one per teacher.
        """
        with eval_mode(self.student):
            student = self.inference_features(self.student_recorder, self.student, sample)
        teachers = [{k: shape_of(v) for k, v in self.inference_features(rec, t.model, sample).items()}
                    for rec, t in zip(self.teacher_recorders, self.teachers, strict=True)]
        student_shapes = {k: shape_of(v) for k, v in student.items()}
        teacher_shapes = teachers if self.method.multi_teacher else (teachers[0] if teachers else {})
        self.extras = self.method.build_extras(student_shapes, teacher_shapes)
        if self.extras is not None:  # on the student's device, with any buffers (CRD's memory bank)
            self.extras.to(self.student_device())
        if self.method.peer_student:
            self.method.bind_peer(self.build_peer(student_shapes["logits"][1]), self.student, self.task)

    def build_peer(self, num_classes: int) -> nn.Module:
        """A second model of the student's architecture (online distillation's peer), initialised from a
        seed derived from the run's (``torch.initial_seed()``, which ``seed_everything`` sets); the
        global random state is left as it was, so the student's own run is unchanged by it."""
        seed = int.from_bytes(hashlib.sha256(f"peer:{torch.initial_seed()}".encode()).digest()[:7], "big")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            peer = self.task.build_model(self.student_name, num_classes)
        return peer.to(self.student_device()).train()

    def init_parameters(self) -> list[nn.Parameter]:
        """What the method's init stage trains (``Method.init_parameters``)."""
        return self.method.init_parameters(self.student, self.extras)

    def inference_features(self, recorder: FeatureRecorder, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Inference-mode features of ``model`` (no gradients), with ``"logits"`` as the task defines it."""
        with torch.no_grad():
            output, features = recorder.record(lambda: self.task.forward_features(model, batch))
        return with_logits(features, output)

    def student_device(self) -> torch.device:
        return next(self.student.parameters()).device

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = list(self.student.parameters())
        if self.extras is not None:
            params += list(self.extras.parameters())
        return params

    def extra_parameter_count(self) -> int:
        extras = [] if self.extras is None else list(self.extras.parameters())
        return sum(p.numel() for p in extras + self.method.auxiliary_parameters())

    def teacher_features(self, batch: Batch) -> list[dict[str, torch.Tensor]]:
        """Each teacher's features for ``batch``: from its output cache, else a live forward pass."""
        features = []
        for recorder, teacher in zip(self.teacher_recorders, self.teachers, strict=True):
            if teacher.cache is not None:
                features.append(to_device(teacher.cache.lookup(batch.indices, batch.variants), self.student_device()))
                continue
            start = time.perf_counter()
            features.append(self.inference_features(recorder, teacher.model, batch))
            self.teacher_forward_seconds += time.perf_counter() - start
            self.teacher_forwards += len(batch.indices)
        return features

    def loss_inputs(self, batch: Batch) -> LossInputs:
        """The teachers' features and the student's training forward pass on ``batch``."""
        teachers = self.teacher_features(batch)
        (output, task_losses), student = self.student_recorder.record(
            lambda: self.method.forward_train(self.task, self.student, batch)
        )
        student = with_logits(student, output)
        return LossInputs(student, teachers[0] if teachers else {}, batch.targets, task_losses, self.task,
                          batch.inputs, teachers, indices=getattr(batch, "indices", None))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The method's loss terms for ``batch``: the forward passes at :attr:`precision`, the losses in fp32."""
        with autocast(self.precision, self.student_device()):
            inputs = self.loss_inputs(batch)
        if self.precision != FP32:
            inputs = dataclasses.replace(inputs, student=as_float32(inputs.student),
                                         teacher=as_float32(inputs.teacher), teachers=as_float32(inputs.teachers),
                                         task_losses=as_float32(inputs.task_losses))
        with full_precision():
            if self.stage == "init":
                return self.method.init_losses(inputs, self.extras)
            return self.method.losses(inputs, self.extras)

    def close(self) -> None:
        self.student_recorder.remove()
        for recorder in self.teacher_recorders:
            recorder.remove()


class EnsembleModel(nn.Module):
    """The teachers' average class distribution as one model (for the ensemble's own accuracy).

    Returns ``log(mean_k softmax(z_k))`` over dimension 1, so the arg-max is the
    ensemble's prediction and the output works wherever logits are expected.
    """

    def __init__(self, models: Sequence[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([F.softmax(m(x), dim=1) for m in self.members]).mean(dim=0)
        return probs.clamp_min(1e-12).log()


def shape_of(feature: Any) -> Any:
    """The shape of a recorded feature: a tensor's, or a dict/list of them for structured outputs."""
    if isinstance(feature, torch.Tensor):
        return feature.shape
    if isinstance(feature, dict):
        return {k: shape_of(v) for k, v in feature.items()}
    return [shape_of(v) for v in feature]


def with_logits(features: dict[str, torch.Tensor], output: Any) -> dict[str, torch.Tensor]:
    """``features`` plus ``"logits"``: the model's output, unless the task maps that point to a module."""
    if "logits" not in features and isinstance(output, torch.Tensor):
        return {**features, "logits": output}
    return features


def freeze(model: nn.Module) -> nn.Module:
    """Put a teacher in eval mode with gradients off (and any left from its own training dropped)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
        p.grad = None
    return model


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
