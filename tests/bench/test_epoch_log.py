"""Per-epoch logs (bench/epoch_log.py): a CSV next to each record, a line per epoch without a terminal,
validation per epoch on request; none of it changes a number of the run."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys

import pytest

from bench.epoch_log import csv_path
from bench.results import ResultsStore
from bench.runner import RunOptions, run_one


@pytest.fixture
def two_epochs(smoke_protocol):
    schedule = dataclasses.replace(smoke_protocol.schedule, epochs=2)
    return dataclasses.replace(smoke_protocol, name="classification-two-epochs", schedule=schedule, seeds=(0,))


def rows_of(store: ResultsStore, record) -> list[dict[str, str]]:
    path = csv_path(store.path(record["protocol"]["key"], record["identity"]))
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_csv_per_record_with_losses_rate_speed_and_validation(two_epochs, tmp_path, no_latency_measurement):
    plain_store, logged_store = ResultsStore(tmp_path / "plain"), ResultsStore(tmp_path / "logged")
    plain = run_one(two_epochs, "kd", 0, plain_store, RunOptions())
    logged = run_one(two_epochs, "kd", 0, logged_store, RunOptions(validate_epochs=True))
    assert logged["metrics"] == plain["metrics"] and logged["final_losses"] == plain["final_losses"]
    rows = rows_of(logged_store, logged)
    assert [(r["stage"], r["epoch"]) for r in rows] == [("main", "1"), ("main", "2")]
    steps = logged["cost"]["steps"] // 2
    for row in rows:
        assert int(row["steps"]) == steps and float(row["samples_per_second"]) > 0
        assert float(row["loss:ce"]) > 0 and float(row["loss:kd"]) > 0
        assert 0 <= float(row["val:top1"]) <= 100 and float(row["validation_seconds"]) > 0
    assert float(rows[1]["lr"]) == 0.0  # cosine to 0 at the last step
    assert "val:top1" not in rows_of(plain_store, plain)[0]  # validation only when asked


def test_an_init_stage_is_logged_before_the_main_run(two_epochs, tmp_path, no_latency_measurement):
    store = ResultsStore(tmp_path)
    record = run_one(two_epochs, "ab", 0, store, RunOptions())
    stages = [(r["stage"], r["epoch"]) for r in rows_of(store, record)]
    init_epochs = record["method"]["hparams"]["init_epochs"]
    assert stages == [("init", str(e)) for e in range(1, init_epochs + 1)] + [("main", "1"), ("main", "2")]
    assert "loss:ab" in rows_of(store, record)[0]


def test_kdbench_run_prints_a_line_per_epoch_when_piped(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--protocol", "classification-smoke", "--method",
                          "baseline", "--seeds", "0", "--results", str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout
    epochs = [line for line in out.splitlines() if " main epoch " in line]
    assert len(epochs) == 4 and epochs[0].startswith("classification-smoke@v2 baseline seed 0 main epoch 1/4: ce ")


def test_tensorboard_gets_each_epoch_as_it_trains(two_epochs, tmp_path, no_latency_measurement):
    """``--tensorboard DIR``: scalars per epoch under DIR/<protocol>/<method>/<entry>/seed-N, the numbers
    of the CSV; the run's own numbers unchanged."""
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store = ResultsStore(tmp_path / "records")
    plain = run_one(two_epochs, "kd", 0, ResultsStore(tmp_path / "plain"), RunOptions())
    record = run_one(two_epochs, "kd", 0, store, RunOptions(tensorboard=str(tmp_path / "tb"), validate_epochs=True))
    assert record["metrics"] == plain["metrics"]
    folder = tmp_path / "tb" / two_epochs.key / "kd" / record["identity"]["entry"][:12] / "seed-0"
    events = EventAccumulator(str(folder))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/ce", "loss/kd", "lr", "samples_per_second", "val/top1"} <= tags
    rows = rows_of(store, record)
    kd = events.Scalars("loss/kd")
    assert [e.step for e in kd] == [1, 2]
    assert [round(e.value, 4) for e in kd] == [round(float(r["loss:kd"]), 4) for r in rows]


def test_tensorboard_missing_is_named_before_anything_runs(tmp_path, monkeypatch, capsys):
    import importlib.util

    from bench.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    code = main(["run", "--protocol", "classification-smoke", "--method", "kd", "--results", str(tmp_path / "r"),
                 "--tensorboard", str(tmp_path / "tb")])
    assert code != 0 and "pip install 'kdbench[tensorboard]'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
