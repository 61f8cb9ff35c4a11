"""Mixed precision (bench/precision.py, issue 16 §2): forward passes under autocast, losses in fp32, the
precision in the run's identity and record, fp16 with a loss scaler that a checkpoint keeps."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.distill import Distiller
from bench.errors import ConfigError
from bench.identity import make_identity
from bench.precision import as_float32, autocast, check_precision
from bench.registry import METHODS
from bench.results import ResultsStore
from bench.runner import RunOptions, run_one


@pytest.fixture
def two_epochs(smoke_protocol):
    return dataclasses.replace(smoke_protocol, name="classification-precision", seeds=(0,),
                               schedule=dataclasses.replace(smoke_protocol.schedule, epochs=2))


def test_an_unknown_precision_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError, match="fp32, bf16, fp16"):
        check_precision("fp8")


def test_fp32_leaves_identities_as_they_were_and_other_precisions_are_their_own_entry():
    args = ("hash", "kd", {"T": 4.0}, {"T": 4.0}, [], "data", 0)
    fp32, bf16 = make_identity(*args), make_identity(*args, precision="bf16")
    assert "precision" not in fp32 and fp32["default"] and fp32["label"] == ""
    assert make_identity(*args, precision="fp32") == fp32
    assert bf16["precision"] == "bf16" and not bf16["default"] and bf16["label"] == "bf16"
    assert bf16["entry"] != fp32["entry"]


def test_as_float32_casts_nested_floating_tensors_only():
    value = {"a": torch.ones(2, dtype=torch.bfloat16), "b": [torch.ones(1, dtype=torch.float16), (torch.arange(3),)]}
    out = as_float32(value)
    assert out["a"].dtype == torch.float32 and out["b"][0].dtype == torch.float32
    assert out["b"][1][0].dtype == torch.int64
    same = torch.ones(2)
    assert as_float32(same) is same


def test_under_bf16_the_forward_runs_in_bf16_and_the_method_sees_fp32(smoke_protocol, monkeypatch):
    from bench.task import make_task

    task = make_task(smoke_protocol)
    splits = task.load_splits(smoke_protocol.dataset)
    student = task.build_model(smoke_protocol.student, len(splits["train"].classes))
    teacher = task.build_model(smoke_protocol.student, len(splits["train"].classes))
    from bench.distill import TeacherInput

    distiller = Distiller(task, student, smoke_protocol.student, METHODS.get("kd")(), [TeacherInput(
        teacher, smoke_protocol.student)])
    seen = {}
    losses = distiller.method.losses

    def spy(inputs, extras):
        seen["student"] = inputs.student["logits"].dtype
        seen["teacher"] = inputs.teacher["logits"].dtype
        seen["autocast"] = torch.is_autocast_enabled("cpu")
        return losses(inputs, extras)

    monkeypatch.setattr(distiller.method, "losses", spy)
    batch = task.collate(splits["train"], torch.arange(8), torch.zeros(8, dtype=torch.long),
                         smoke_protocol.augmentation)
    raw = {}
    student.register_forward_hook(lambda m, i, o: raw.update(dtype=o.dtype))
    distiller.precision = "bf16"
    terms = distiller(batch)
    assert raw["dtype"] == torch.bfloat16  # the student's forward ran under autocast
    assert seen == {"student": torch.float32, "teacher": torch.float32, "autocast": False}
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in terms.values())
    with autocast("fp32", torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_run_at_a_lower_precision_is_recorded_as_such(two_epochs, tmp_path, precision, no_latency_measurement):
    record = run_one(two_epochs, "kd", 0, ResultsStore(tmp_path), RunOptions(precision=precision))
    assert record["precision"] == precision and record["identity"]["precision"] == precision
    assert record["identity"]["label"] == precision and not record["identity"]["default"]
    assert all(torch.isfinite(torch.tensor(v)) for v in record["final_losses"].values())
    fp32 = run_one(two_epochs, "kd", 0, ResultsStore(tmp_path), RunOptions())
    assert fp32["precision"] == "fp32" and "precision" not in fp32["identity"]
    assert fp32["identity"]["entry"] != record["identity"]["entry"]


def test_fp16_resumes_with_its_loss_scale(two_epochs, tmp_path, monkeypatch, no_latency_measurement):
    """A checkpoint keeps fp16's GradScaler state: stopped after epoch 1 and rerun, the numbers are the
    uninterrupted run's."""
    from bench.checkpoint import Checkpointing

    whole = run_one(two_epochs, "kd", 0, ResultsStore(tmp_path / "whole"), RunOptions(precision="fp16"))
    save, saved = Checkpointing.save, {}

    def save_then_stop(self, stage, epoch, *args, **kwargs):
        save(self, stage, epoch, *args, **kwargs)
        saved["scaler"] = args[7] if len(args) >= 8 else kwargs.get("scaler")
        raise KeyboardInterrupt

    store = ResultsStore(tmp_path / "stopped")
    options = RunOptions(precision="fp16", checkpoint_every=1)
    with monkeypatch.context() as mp:
        mp.setattr(Checkpointing, "save", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            run_one(two_epochs, "kd", 0, store, options)
    assert saved["scaler"] is not None
    resumed = run_one(two_epochs, "kd", 0, store, options)
    assert resumed["metrics"] == whole["metrics"] and resumed["final_losses"] == whole["final_losses"]
