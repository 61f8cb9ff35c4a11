"""The suite on Ray (bench/ray_executor.py, issue 16 §6), on a local Ray cluster the test starts on the
loopback interface: every run lands in the results folder with the numbers of the local pool, and a
worker killed during a run is retried by Ray and resumes from its checkpoint to the same numbers."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

KDBENCH = str(Path(sys.executable).with_name("kdbench"))
RAY = str(Path(sys.executable).with_name("ray"))


def ray_processes(title: str) -> list[int]:
    """PIDs whose command line (Ray sets it to ``ray::<task>`` while a task runs) starts with ``title``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").startswith(title):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture
def cluster(tmp_path):
    """A one-node Ray cluster on 127.0.0.1 with 2 CPUs, stopped after the test."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    port = 6390 + os.getpid() % 100
    started = subprocess.run([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                              "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                             env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def suite(tmp_path: Path, protocol: Path, results: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([KDBENCH, "suite", "--protocol-file", str(protocol), "--methods", "kd", "--results",
                             str(results), "--out", str(tmp_path / f"{results.name}-tables"), *extra],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def records(results: Path) -> dict[int, dict]:
    found = {}
    for path in results.rglob("seed-*.json"):
        if path.name.count(".") == 1:
            record = json.loads(path.read_text())
            found[record["seed"]] = record
    return found


@pytest.fixture
def protocol_file(smoke_protocol, tmp_path):
    """The smoke protocol with 5 epochs and seeds 0, 1, as a user's protocol file."""
    schedule = dataclasses.replace(smoke_protocol.schedule, epochs=5)
    protocol = dataclasses.replace(smoke_protocol, name="classification-ray", schedule=schedule, seeds=(0, 1))
    path = tmp_path / "classification-ray.json"
    path.write_text(json.dumps(protocol.to_dict()))
    return path


@pytest.mark.slow
def test_a_ray_suite_survives_a_killed_worker_with_the_local_numbers(tmp_path, cluster, protocol_file):
    local = suite(tmp_path, protocol_file, tmp_path / "local", "--jobs", "2")
    out, _ = local.communicate(timeout=600)
    assert local.returncode == 0, out[-3000:]
    on_ray = suite(tmp_path, protocol_file, tmp_path / "ray", "--executor", "ray", "--address", cluster)
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and time.monotonic() < deadline and on_ray.poll() is None:
        if list((tmp_path / "ray").rglob("*.ckpt.pt")):  # a run has checkpointed: kill its worker
            pids = ray_processes("ray::_ray_run")
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed = pids[0]
        time.sleep(0.05)
    out, _ = on_ray.communicate(timeout=600)
    assert on_ray.returncode == 0, out[-3000:]
    assert killed is not None, "no Ray worker was caught mid-run"
    a, b = records(tmp_path / "local"), records(tmp_path / "ray")
    assert sorted(a) == sorted(b) == [0, 1]
    for seed in a:
        assert a[seed]["metrics"] == b[seed]["metrics"] and a[seed]["final_losses"] == b[seed]["final_losses"]
    assert not list((tmp_path / "ray").rglob("*.ckpt.pt"))
    assert "## classification-ray@" in out  # the table was printed


def test_ray_options_are_checked_before_anything_runs(tmp_path, capsys):
    from bench.cli import main

    code = main(["suite", "--tier", "smoke", "--address", "127.0.0.1:1", "--results", str(tmp_path / "r")])
    assert code == 2 and "--address names a Ray cluster: it needs --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
