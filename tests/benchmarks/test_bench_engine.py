"""pytest-benchmark timings (``tox -e bench``): a training step per method and a teacher forward.

Not part of the default test run; a slowdown of the engine or a method shows as a number here.
"""

from __future__ import annotations

import pytest
import torch

from bench.distill import Distiller
from bench.engine import make_optimizer, seed_everything, set_threads
from bench.protocol import get_protocol
from bench.registry import METHODS
from bench.runner import RunOptions, Workspace


@pytest.fixture(scope="module")
def workspace():
    protocol = get_protocol("classification-mini")
    set_threads(protocol.threads)
    return Workspace(protocol, RunOptions())


@pytest.fixture(scope="module")
def batch(workspace):
    generator = torch.Generator().manual_seed(0)
    return next(workspace.task.train_batches(workspace.splits["train"], workspace.protocol.schedule.batch_size,
                                             workspace.protocol.augmentation, generator))


@pytest.mark.parametrize("method", METHODS.names())
def test_training_step(benchmark, workspace, batch, method):
    protocol = workspace.protocol
    m = METHODS.get(method)()
    teacher = workspace.teacher().model if m.needs_teacher else None
    seed_everything(0)
    student = workspace.task.build_model(protocol.student, 20)
    distiller = Distiller(workspace.task, student, protocol.student, m, teacher, protocol.teacher.model)
    distiller.build_extras(batch)
    optimizer, _ = make_optimizer(distiller.trainable_parameters(), protocol.schedule, 1000)

    def step():
        loss = sum(distiller(batch).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    benchmark(step)


def test_teacher_forward(benchmark, workspace, batch):
    teacher = workspace.teacher().model

    def forward():
        with torch.no_grad():
            teacher(batch.inputs)

    benchmark(forward)


@pytest.mark.parametrize("method", METHODS.names())
def test_method_loss_on_fixed_tensors(benchmark, workspace, batch, method):
    """The method's loss alone, on features recorded once from a fixed batch."""
    from bench.method import LossInputs

    protocol = workspace.protocol
    m = METHODS.get(method)()
    teacher = workspace.teacher().model if m.needs_teacher else None
    seed_everything(0)
    student = workspace.task.build_model(protocol.student, 20)
    distiller = Distiller(workspace.task, student, protocol.student, m, teacher, protocol.teacher.model)
    distiller.build_extras(batch)
    recorded = distiller.inference_features(distiller.student_recorder, student, batch)
    student_features = {k: v.detach().requires_grad_() for k, v in recorded.items()}
    teacher_features = distiller.teacher_features(batch)
    task_losses = workspace.task.task_losses(student_features["logits"], batch.targets)
    inputs = LossInputs(student_features, teacher_features, batch.targets, task_losses)
    benchmark(lambda: m.losses(inputs, distiller.extras))
