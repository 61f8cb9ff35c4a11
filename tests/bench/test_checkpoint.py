"""Checkpoints inside a run (bench/checkpoint.py): a run stopped after a checkpoint and rerun ends with
exactly the numbers of an uninterrupted run, on the CPU, for methods with state of their own."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time

import pytest

from bench.checkpoint import Checkpointing, checkpoint_path
from bench.epoch_log import csv_path
from bench.results import ResultsStore
from bench.runner import RunOptions, run_one


class Killed(Exception):
    pass


@pytest.fixture
def four_epochs(smoke_protocol):
    return dataclasses.replace(smoke_protocol, name="classification-four-epochs", seeds=(0,))


def stop_after(monkeypatch, stage: str, epoch: int):
    """Make the run stop (an exception, as a kill would) right after its checkpoint of ``stage`` ``epoch``."""
    save = Checkpointing.save

    def save_then_stop(self, stage_now, epoch_done, *args, **kwargs):
        save(self, stage_now, epoch_done, *args, **kwargs)
        if (stage_now, epoch_done) == (stage, epoch):
            raise Killed(f"stopped after {stage} epoch {epoch}")

    monkeypatch.setattr(Checkpointing, "save", save_then_stop)


def same_run(a, b):
    assert a["metrics"] == b["metrics"] and a["final_losses"] == b["final_losses"]
    assert a["cost"]["steps"] == b["cost"]["steps"] and a["identity"] == b["identity"]


@pytest.mark.parametrize("method, hparams, stage, epoch", [
    ("kd", {}, "main", 2),
    ("dkd", {}, "main", 1),            # the warm-up's step count
    ("dml", {}, "main", 2),            # a peer with its own optimiser
    ("crd", {}, "main", 3),            # a memory bank and random negatives
    ("ab", {"init_epochs": 2}, "init", 1),  # stopped inside the init stage
    ("ab", {"init_epochs": 2}, "main", 2),  # stopped after it
])
def test_a_stopped_run_resumes_to_the_uninterrupted_numbers(four_epochs, tmp_path, monkeypatch, method, hparams,
                                                            stage, epoch, no_latency_measurement):
    whole = run_one(four_epochs, method, 0, ResultsStore(tmp_path / "whole"), RunOptions(hparams=hparams))
    store = ResultsStore(tmp_path / "stopped")
    options = RunOptions(hparams=hparams, checkpoint_every=1)
    with monkeypatch.context() as mp:
        stop_after(mp, stage, epoch)
        with pytest.raises(Killed):
            run_one(four_epochs, method, 0, store, options)
    record_path = store.path(four_epochs.key, whole["identity"])
    assert checkpoint_path(record_path).is_file() and not record_path.exists()
    resumed = run_one(four_epochs, method, 0, store, options)
    same_run(resumed, whole)
    assert not checkpoint_path(record_path).exists()  # deleted once the record is written
    rows = csv_path(record_path).read_text().splitlines()[1:]
    assert len(rows) == 4 + hparams.get("init_epochs", 0)  # the log kept the epochs before the stop


def test_a_checkpoint_of_another_run_is_ignored(four_epochs, tmp_path, no_latency_measurement):
    store = ResultsStore(tmp_path)
    whole = run_one(four_epochs, "kd", 0, ResultsStore(tmp_path / "whole"), RunOptions())
    path = checkpoint_path(store.path(four_epochs.key, whole["identity"]))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="does not load"):
        again = run_one(four_epochs, "kd", 0, store, RunOptions())
    same_run(again, whole)


def test_kdbench_run_killed_and_rerun_gives_the_same_record(tmp_path, smoke_protocol):
    """A real kill (SIGKILL) of `kdbench run --checkpoint-every 1` after its first checkpoint, then the same
    command again: it resumes and writes the record an uninterrupted run writes."""
    long = dataclasses.replace(smoke_protocol, name="classification-long-smoke",
                               schedule=dataclasses.replace(smoke_protocol.schedule, epochs=12), seeds=(0,))
    protocol_file = tmp_path / "long.json"
    protocol_file.write_text(json.dumps(long.to_dict()))

    def command(results):
        return [sys.executable, "-m", "bench.cli", "run", "--protocol-file", str(protocol_file), "--method", "kd",
                "--seeds", "0", "--results", str(results), "--quiet", "--checkpoint-every", "1"]

    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True)
    process = subprocess.Popen(command(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((tmp_path / "killed").rglob("*.ckpt.pt")) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list((tmp_path / "killed").rglob("*.ckpt.pt")) and not list((tmp_path / "killed").rglob("seed-0.json"))
    subprocess.run(command(tmp_path / "killed"), check=True, capture_output=True)
    [whole] = [json.loads(p.read_text()) for p in (tmp_path / "whole").rglob("seed-0.json")]
    [resumed] = [json.loads(p.read_text()) for p in (tmp_path / "killed").rglob("seed-0.json")]
    same_run(resumed, whole)
    assert not list((tmp_path / "killed").rglob("*.ckpt.pt"))
