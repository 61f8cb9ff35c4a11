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
