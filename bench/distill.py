"""The Distiller: teacher + student + method, with features recorded by module path.

Features are read with forward hooks on ``model.get_submodule(path)``, so any
off-the-shelf model works unmodified. The teacher is frozen (no gradients, eval
mode); its outputs may come from a :class:`~bench.teacher_cache.TeacherOutputCache`
instead of a live forward pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from bench.method import LossInputs, Method
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


class Distiller(nn.Module):
    """Computes the named loss terms of one batch for a student taught by a teacher."""

    def __init__(
        self,
        task: Task,
        student: nn.Module,
        student_name: str,
        method: Method,
        teacher: nn.Module | None = None,
        teacher_name: str = "",
        teacher_cache=None,
    ):
        super().__init__()
        self.task, self.method = task, method
        self.student = student
        self.student_recorder = FeatureRecorder(
            student, {p: task.module_path(student_name, p) for p in method.student_features}
        )
        self.teacher = None
        self.teacher_recorder = None
        self.teacher_cache = teacher_cache
        self.teacher_forward_seconds = 0.0
        self.teacher_forwards = 0
        if method.needs_teacher:
            if teacher is None:
                raise ValueError(f"method {type(method).__name__} needs a teacher")
            freeze(teacher)
            # Not a submodule: its parameters must never reach the optimiser or a state dict.
            self.__dict__["teacher"] = teacher
            self.teacher_recorder = FeatureRecorder(
                teacher, {p: task.module_path(teacher_name, p) for p in method.teacher_features}
            )
        self.extras: nn.Module | None = None

    def build_extras(self, sample: Batch) -> None:
        """Run one probe forward pass to learn feature shapes and let the method build extras."""
        with eval_mode(self.student):
            student = self.inference_features(self.student_recorder, self.student, sample)
        teacher = {}
        if self.teacher_recorder is not None:
            teacher = self.inference_features(self.teacher_recorder, self.teacher, sample)
        student_shapes = {k: shape_of(v) for k, v in student.items()}
        teacher_shapes = {k: shape_of(v) for k, v in teacher.items()}
        self.extras = self.method.build_extras(student_shapes, teacher_shapes)

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

    def teacher_features(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.teacher_recorder is None:
            return {}
        if self.teacher_cache is not None:
            device = self.student_device()
            return to_device(self.teacher_cache.lookup(batch.indices, batch.variants), device)
        start = time.perf_counter()
        features = self.inference_features(self.teacher_recorder, self.teacher, batch)
        self.teacher_forward_seconds += time.perf_counter() - start
        self.teacher_forwards += len(batch.indices)
        return features

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        teacher = self.teacher_features(batch)
        (output, task_losses), student = self.student_recorder.record(
            lambda: self.task.forward_train(self.student, batch)
        )
        student = with_logits(student, output)
        inputs = LossInputs(student, teacher, batch.targets, task_losses, self.task, batch.inputs)
        return self.method.losses(inputs, self.extras)

    def close(self) -> None:
        self.student_recorder.remove()
        if self.teacher_recorder is not None:
            self.teacher_recorder.remove()


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
