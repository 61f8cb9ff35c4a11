"""pytest-benchmark timings (``tox -e bench``): a training step per method, each method's loss on
fixed tensors, and a teacher forward, on every mini protocol the method applies to.

Not part of the default test run; a slowdown of the engine or a method shows as a number here.
"""

from __future__ import annotations

import pytest
import torch

from bench.distill import Distiller
from bench.engine import make_optimizer, seed_everything
from bench.protocol import protocols_of_tier
from bench.runner import RunOptions, Workspace, bind_training_data, build_method
from bench.suite import applicable_methods

PROTOCOLS = {p.name: p for p in protocols_of_tier("mini")}
CASES = [(name, m) for name, p in PROTOCOLS.items() for m in applicable_methods(p)]
_prepared: dict[str, tuple[Workspace, object]] = {}


def prepared(protocol_name: str):
    """The protocol's workspace (teacher trained or loaded) and a fixed first batch."""
    if protocol_name not in _prepared:
        protocol = PROTOCOLS[protocol_name]
        torch.set_num_threads(protocol.threads)
        workspace = Workspace(protocol, RunOptions())
        generator = torch.Generator().manual_seed(0)
        batch = next(workspace.task.train_batches(workspace.splits["train"], protocol.schedule.batch_size,
                                                  protocol.augmentation, generator))
        _prepared[protocol_name] = (workspace, batch)
    return _prepared[protocol_name]


def make_distiller(workspace: Workspace, batch, method_name: str) -> Distiller:
    protocol = workspace.protocol
    method = build_method(protocol, method_name)
    _, teachers = workspace.teacher_inputs(method, cached=False)
    seed_everything(0)
    student = workspace.task.build_model(protocol.student, len(workspace.splits["train"].classes))
    distiller = Distiller(workspace.task, student, protocol.student, method, teachers)
    bind_training_data(method, workspace.task, workspace.splits["train"], protocol.schedule)
    distiller.build_extras(batch)
    return distiller


@pytest.mark.parametrize("protocol_name,method", CASES)
def test_training_step(benchmark, protocol_name, method):
    workspace, batch = prepared(protocol_name)
    distiller = make_distiller(workspace, batch, method)
    optimizer, _ = make_optimizer(distiller.trainable_parameters(), workspace.protocol.schedule, 1000)

    def step():
        loss = sum(distiller(batch).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    benchmark(step)


@pytest.mark.parametrize("protocol_name,method", CASES)
def test_method_loss_on_fixed_tensors(benchmark, protocol_name, method):
    """The method's loss alone, on features recorded once from a fixed batch."""
    workspace, batch = prepared(protocol_name)
    distiller = make_distiller(workspace, batch, method)
    distiller.student.train()
    inputs = distiller.loss_inputs(batch)
    benchmark(lambda: distiller.method.losses(inputs, distiller.extras))


@pytest.mark.parametrize("protocol_name", list(PROTOCOLS))
def test_teacher_forward(benchmark, protocol_name):
    workspace, batch = prepared(protocol_name)
    teacher = workspace.teacher().model.eval()

    def forward():
        with torch.no_grad():
            workspace.task.forward_features(teacher, batch)

    benchmark(forward)
