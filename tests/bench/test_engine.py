import pytest
import torch

from bench.errors import NonFiniteLossError
from bench.method import Method
from bench.registry import METHODS
from bench.results import ResultsStore
from bench.runner import run_one


class ExplodingMethod(Method):
    """Returns a NaN term from the second step on."""

    defaults = {}

    def __init__(self, **hparams):
        super().__init__(**hparams)
        self.calls = 0

    def losses(self, inputs, extras):
        self.calls += 1
        bad = torch.tensor(float("nan")) if self.calls >= 2 else torch.tensor(0.0)
        return {**inputs.task_losses, "boom": bad}


def test_non_finite_loss_names_step_and_terms(tmp_path, tiny_protocol, monkeypatch):
    original_get = METHODS.get
    monkeypatch.setattr(METHODS, "get", lambda name: ExplodingMethod if name == "exploding" else original_get(name))
    store = ResultsStore(tmp_path)
    with pytest.raises(NonFiniteLossError) as info:
        run_one(tiny_protocol, "exploding", 0, store)
    message = str(info.value)
    assert "step 2" in message and "boom=nan" in message and "ce=" in message
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_record_carries_the_protocol_identity_and_costs(tmp_path, tiny_protocol):
    record = run_one(tiny_protocol, "kd", 0, ResultsStore(tmp_path))
    assert record["protocol"]["hash"] == tiny_protocol.spec_hash
    assert record["protocol"]["key"] == tiny_protocol.key
    assert record["teacher"]["sha256"] and record["teacher"]["source"] == "zoo"
    assert record["efficiency"]["student_params"] > 0
    assert record["cost"]["train_seconds"] > 0
    assert record["cost"]["steps"] == 800 // 50
    assert isinstance(record["metrics"]["top1"], float)
    assert record["provenance"]["threads"] == tiny_protocol.threads


def _train_size(protocol) -> int:
    from bench.registry import TASKS

    return len(TASKS.get(protocol.task)().load_splits(protocol.dataset)["train"])


@pytest.mark.parametrize("method,stage", [("baseline", "student"), ("kd", "teacher")])
def test_a_split_smaller_than_one_batch_is_refused_before_any_training(tmp_path, tiny_protocol, monkeypatch,
                                                                       method, stage):
    """Dropping the last partial batch would train 0 steps and still write a record: refuse with the numbers."""
    import dataclasses

    from bench.errors import DataError
    from bench.teachers import TeacherZoo

    n = _train_size(tiny_protocol)
    big = dataclasses.replace(tiny_protocol.schedule, batch_size=n + 1)
    if stage == "student":
        protocol = dataclasses.replace(tiny_protocol, schedule=big)
    else:
        protocol = dataclasses.replace(tiny_protocol, teacher=dataclasses.replace(tiny_protocol.teacher, schedule=big))
    monkeypatch.setattr(TeacherZoo, "_train", lambda *a, **k: pytest.fail("a teacher was trained"))
    with pytest.raises(DataError, match=rf"training {stage} .*has {n} samples, fewer than one batch of {n + 1}"):
        run_one(protocol, method, 0, ResultsStore(tmp_path))
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_train_itself_refuses_zero_steps(tiny_protocol):
    """The engine's own guard, for callers that skip the runner's validation (the teacher zoo)."""
    import dataclasses

    from bench.distill import Distiller
    from bench.engine import seed_everything, train
    from bench.errors import DataError
    from bench.registry import TASKS

    task = TASKS.get(tiny_protocol.task)()
    split = task.load_splits(tiny_protocol.dataset)["train"]
    student = task.build_model(tiny_protocol.student, len(split.classes))
    distiller = Distiller(task, student, tiny_protocol.student, METHODS.get("baseline")(), [])
    schedule = dataclasses.replace(tiny_protocol.schedule, batch_size=len(split) + 1)
    before = [p.detach().clone() for p in student.parameters()]
    with pytest.raises(DataError, match=f"{len(split)} samples"):
        train(distiller, split, schedule, tiny_protocol.augmentation, seed_everything(0), desc="student x")
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))


@pytest.mark.parametrize("value", [250.0, -0.5, float("inf")])
def test_a_metric_outside_the_task_range_writes_no_record(tmp_path, tiny_protocol, monkeypatch, value):
    """Every metric of the tasks is a percentage (``Task.metric_range``): 250 is a bug, not a result."""
    from bench.errors import KDBenchError
    from tasks.classification.task import ClassificationTask

    real = ClassificationTask.evaluate
    monkeypatch.setattr(ClassificationTask, "evaluate",
                        lambda self, *a, **k: {**real(self, *a, **k), "top1": value})
    with pytest.raises(KDBenchError, match=rf"metric 'top1' = {value!r} is outside its range 0..100"):
        run_one(tiny_protocol, "baseline", 0, ResultsStore(tmp_path))
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_undefined_metrics_pass_the_range_check():
    from bench.engine import check_metric_range
    from bench.registry import TASKS

    for name in TASKS.names():
        check_metric_range(TASKS.get(name)(), {"a": None, "b": float("nan"), "c": 0.0, "d": 100.0})
