"""Contract tests generated from the method registry: every registered method must satisfy them,
on the smoke protocol of every task it applies to.

- its losses are finite;
- gradients reach only the student and the method's extras (checked on the autograd graph);
- the teacher's weights are bit-identical after training;
- the same seed gives the same metrics on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from bench.distill import Distiller
from bench.engine import seed_everything
from bench.protocol import protocols_of_tier
from bench.results import ResultsStore
from bench.runner import RunOptions, Workspace, bind_training_data, build_method, run_one
from bench.suite import applicable_methods

CASES = [(p.name, m) for p in protocols_of_tier("smoke") for m in applicable_methods(p)]


def graph_leaves(loss: torch.Tensor) -> set[int]:
    """ids of the leaf tensors whose gradients ``loss.backward()`` would accumulate."""
    seen, leaves, stack = set(), set(), [loss.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            leaves.add(id(fn.variable))
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return leaves


_workspaces: dict[str, Workspace] = {}


def workspace_for(protocol_name: str) -> Workspace:
    """The smoke protocol cut to one epoch and one seed, shared by the module's tests."""
    if protocol_name not in _workspaces:
        import dataclasses

        from bench.protocol import get_protocol

        smoke = get_protocol(protocol_name)
        protocol = dataclasses.replace(smoke, name=f"{smoke.name}-contract",
                                       schedule=dataclasses.replace(smoke.schedule, epochs=1), seeds=(0,))
        _workspaces[protocol_name] = Workspace(protocol, RunOptions())
    return _workspaces[protocol_name]


def make_distiller(ws: Workspace, name: str) -> Distiller:
    method = build_method(ws.protocol, name)
    _, teachers = ws.teacher_inputs(method, cached=False)
    seed_everything(0)
    student = ws.task.build_model(ws.protocol.student, len(ws.splits["train"].classes))
    distiller = Distiller(ws.task, student, ws.protocol.student, method, teachers)
    bind_training_data(method, ws.task, ws.splits["train"], ws.protocol.schedule)
    distiller.build_extras(first_batch(ws))
    return distiller


def first_batch(ws: Workspace):
    generator = torch.Generator().manual_seed(0)
    return next(ws.task.train_batches(ws.splits["train"], 8, ws.protocol.augmentation, generator))


def test_every_method_is_covered():
    from bench.registry import METHODS

    assert {m for _, m in CASES} == set(METHODS.names())


@pytest.mark.parametrize("protocol_name,name", CASES)
def test_losses_are_finite_named_tensors(protocol_name, name):
    workspace = workspace_for(protocol_name)
    terms = make_distiller(workspace, name)(first_batch(workspace))
    assert terms, f"{name} returned no loss terms"
    for term, value in terms.items():
        assert value.ndim == 0, f"{name}.{term} is not a scalar"
        assert torch.isfinite(value), f"{name}.{term} = {value}"


@pytest.mark.parametrize("protocol_name,name", CASES)
def test_gradients_reach_only_the_student_and_extras(protocol_name, name):
    workspace = workspace_for(protocol_name)
    distiller = make_distiller(workspace, name)
    loss = sum(distiller(first_batch(workspace)).values())
    # the method's own adversary (trained in its own step) may sit in the graph too
    allowed = {id(p) for p in distiller.trainable_parameters() + distiller.method.auxiliary_parameters()}
    leaves = graph_leaves(loss)
    assert leaves, "the loss does not depend on any parameter"
    assert leaves <= allowed, f"{name}: gradients flow into tensors outside the student and extras"
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in distiller.student.parameters())
    for teacher in distiller.teachers:
        assert all(p.grad is None for p in teacher.model.parameters())


@pytest.mark.parametrize("protocol_name,name", CASES)
def test_teacher_unchanged_and_same_seed_same_result(protocol_name, name, tmp_path):
    workspace = workspace_for(protocol_name)
    protocol = workspace.protocol
    method = build_method(protocol, name)
    teachers = [t.model for _, t in workspace.teaching(method).stages]  # every teacher, assistant and member
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in teachers]
    options = RunOptions(teacher_output_cache=False)
    first = run_one(protocol, name, 0, ResultsStore(tmp_path / "a"), options, workspace)
    second = run_one(protocol, name, 0, ResultsStore(tmp_path / "b"), options, workspace)
    for model, state in zip(teachers, before, strict=True):
        after = model.state_dict()
        assert all(torch.equal(state[k], after[k]) for k in state), f"{name} changed a teacher"
    assert first["metrics"] == second["metrics"]
    assert first["final_losses"] == second["final_losses"]
