"""End-to-end tests of the ``kdbench`` command on the smoke protocol, and its error handling."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import REGRESSION_REFERENCE, main
from bench.results import record_digest


def kdbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script in a fresh process."""
    exe = Path(sys.executable).with_name("kdbench")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(),
                          timeout=600)


def test_console_script_lists_the_registries():
    result = kdbench("list")
    assert result.returncode == 0, result.stderr
    for name in ("classification", "baseline", "kd", "classification-mini", "shapes20"):
        assert name in result.stdout


@pytest.mark.parametrize("args,kind,valid", [
    (["run", "--protocol", "nope", "--method", "kd"], "protocol", "classification-mini"),
    (["run", "--protocol", "classification-smoke", "--method", "nope"], "method", "baseline"),
    (["suite", "--protocols", "nope"], "protocol", "classification-smoke"),
])
def test_unknown_names_exit_2_and_list_the_valid_ones(args, kind, valid, capsys, tmp_path):
    assert main([*args, "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"unknown {kind} 'nope'" in err and valid in err


def test_unknown_task_is_listed(capsys):
    from bench.errors import UnknownNameError
    from bench.registry import TASKS

    with pytest.raises(UnknownNameError, match="classification"):
        TASKS.get("depth")


def test_unknown_hyperparameter_key_is_named(capsys, tmp_path):
    code = main(["run", "--protocol", "classification-smoke", "--method", "kd", "--set", "temprature=2",
                 "--results", str(tmp_path), "--quiet"])
    assert code == 2
    assert "temprature" in capsys.readouterr().err


def test_missing_dataset_path_names_path_and_layout(capsys, tmp_path, monkeypatch):
    import dataclasses

    from bench.protocol import get_protocol
    from bench.registry import PROTOCOLS

    smoke = get_protocol("classification-smoke")
    cifar = dataclasses.replace(smoke, name="cifar-test", dataset={"name": "cifar10"})
    original = PROTOCOLS.get
    monkeypatch.setattr(PROTOCOLS, "get", lambda n: (lambda: cifar) if n == "cifar-test" else original(n))
    missing = tmp_path / "nowhere"
    code = main(["run", "--protocol", "cifar-test", "--method", "baseline", "--data-root", str(missing),
                 "--results", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(missing) in err and "cifar-10-batches-py" in err


def test_run_then_regress_end_to_end(tmp_path):
    results = tmp_path / "results"
    for method in ("baseline", "kd"):
        run = kdbench("run", "--protocol", "classification-smoke", "--method", method,
                      "--results", str(results), "--quiet")
        assert run.returncode == 0, run.stderr
    records = sorted(results.rglob("seed-*.json"))
    assert len(records) == 4
    again = kdbench("run", "--protocol", "classification-smoke", "--method", "kd", "--results", str(results))
    assert "already in" in again.stdout

    # the gate against a reference of these two methods (the committed one may come from another machine,
    # where the exact mode does not hold; tests/bench/test_gate_mutations.py reruns against a fresh one)
    reference = tmp_path / "reference"
    shutil.copytree(results, reference)
    passed = kdbench("regress", "--records", str(results), "--reference", str(reference), "--skip-published")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "all" in passed.stdout and "passed" in passed.stdout

    degraded = tmp_path / "degraded"
    shutil.copytree(results, degraded)
    victim = next((degraded / "classification-smoke@v2" / "kd").rglob("seed-0.json"))
    record = json.loads(victim.read_text())
    record["metrics"]["top1"] -= 60.0
    record["digest"] = record_digest(record)  # a consistently digested record with a regressed number
    victim.write_text(json.dumps(record))
    failed = kdbench("regress", "--records", str(degraded), "--reference", str(reference), "--skip-published")
    assert failed.returncode == 1
    line = next(row for row in failed.stdout.splitlines() if "changed" in row)
    assert "classification-smoke@v2" in line and "kd" in line and "top1" in line
    assert f"-> {record['metrics']['top1']!r}" in line  # old and new value named


def test_reference_records_are_committed():
    assert any(REGRESSION_REFERENCE.rglob("seed-*.json")), "run `kdbench regress --update` and commit"


def test_leaderboard_renders_the_published_records(tmp_path):
    from bench.cli import PUBLISHED_RECORDS

    code = main(["leaderboard", "--results", str(PUBLISHED_RECORDS), "--out", str(tmp_path)])
    assert code == 0
    text = (tmp_path / "README.md").read_text()
    assert "classification-mini@v2" in text and "Ensemble reference:" in text
    assert (tmp_path / "classification-mini@v2.csv").is_file()


def test_suite_runs_every_smoke_protocol_on_two_processes(tmp_path):
    results, out = tmp_path / "results", tmp_path / "board"
    suite = kdbench("suite", "--tier", "smoke", "--jobs", "2", "--results", str(results), "--out", str(out))
    assert suite.returncode == 0, suite.stderr
    from bench.protocol import protocols_of_tier
    from bench.suite import applicable_methods

    expected = sum(len(applicable_methods(p)) * len(p.seeds) for p in protocols_of_tier("smoke"))
    assert len(list(results.rglob("seed-*.json"))) == expected
    for protocol in protocols_of_tier("smoke"):
        assert f"## {protocol.key}" in suite.stdout
        assert (out / f"{protocol.key}.csv").is_file()
    again = kdbench("suite", "--tier", "smoke", "--results", str(results), "--out", str(out))
    assert again.returncode == 0 and "## classification-smoke@v2" in again.stdout  # nothing left to run


def test_sweep_command_writes_the_assistant_table_and_plot(tmp_path):
    sweep = kdbench("sweep", "--protocol", "classification-smoke", "--results", str(tmp_path / "results"),
                    "--sweeps", str(tmp_path / "sweeps"), "--quiet")
    assert sweep.returncode == 0, sweep.stderr
    assert "TAKD assistant-size sweep" in sweep.stdout and "| tinyresnet_12 |" in sweep.stdout
    stem = "classification-smoke@v2-takd-assistant-sweep"
    assert {p.name for p in (tmp_path / "sweeps").glob(stem + ".*")} == {
        f"{stem}.md", f"{stem}.csv", f"{stem}.png", f"{stem}.svg"}


def test_sweep_and_run_reject_bad_teaching_setups_with_exit_2(tmp_path):
    no_sweep = kdbench("sweep", "--protocol", "pose-smoke", "--sweeps", str(tmp_path / "s"))
    assert no_sweep.returncode == 2 and "has no 'assistant_sweep'" in no_sweep.stderr
    bad_chain = kdbench("run", "--protocol", "classification-smoke", "--method", "takd",
                        "--set", "assistants=['tinyresnet_32']", "--results", str(tmp_path / "r"))
    assert bad_chain.returncode == 2 and "assistant tinyresnet_32 is not between" in bad_chain.stderr
    assert not (tmp_path / "r").exists()
