"""Bad input fails before anything is loaded or trained, as one line naming the option and the value
(issue 12, items 10 and 11): hyperparameter types and ranges, seeds, devices, the results folder,
options that do not apply to the method, suite method names, --jobs, and a full disk."""

from __future__ import annotations

import errno
import math
import os

import pytest
import torch

from bench.cli import main
from bench.method import check_hparam
from bench.registry import METHODS

RUN = ["run", "--protocol", "classification-smoke", "--quiet"]


@pytest.fixture
def nothing_is_loaded(monkeypatch):
    """Any data loading, teacher training or profiling fails the test: the error must come first."""
    import bench.runner
    import bench.suite

    def loaded(*args, **kwargs):
        pytest.fail("data was loaded or something trained before the error")

    monkeypatch.setattr(bench.runner.Workspace, "__init__", loaded)
    monkeypatch.setattr(bench.suite, "check_and_profile", loaded)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("kdbench: error: "), err
    return err


@pytest.mark.parametrize("args,expected", [
    (["--method", "kd", "--set", "T=abc"],
     "method kd: hyperparameter 'T' must be a number like its default 4.0, got 'abc'"),
    (["--method", "kd", "--set", "T=0"], "'T' = 0 is outside (0, inf)"),
    (["--method", "kd", "--set", "T=-1"], "'T' = -1 is outside (0, inf)"),
    (["--method", "kd", "--set", "alpha=2"], "'alpha' = 2 is outside [0, 1]"),
    (["--method", "kd", "--set", "alpha=True"], "'alpha' must be a number"),
    (["--method", "cwd", "--protocol", "segmentation-smoke", "--set", "tau=-2.0"], "'tau' = -2.0 is outside"),
    (["--method", "kd", "--seeds", str(2**63)], f"--seeds {2**63}: a seed must be in 0..2^63-1"),
    (["--method", "kd", "--seeds", "0", "-1"], "--seeds -1: a seed must be in 0..2^63-1"),
    (["--method", "kd", "--device", "gpu0"], "--device 'gpu0' is not a torch device"),
    (["--method", "kd", "--device", "cuda:99"], "--device 'cuda:99': this machine has"),
    (["--method", "baseline", "--teacher", "t.pt"], "--teacher does not apply to method 'baseline'"),
    (["--method", "mt-avg", "--teacher", "t.pt"], "--teacher does not apply to method 'mt-avg'"),
    (["--method", "kd", "--ensemble-teacher", "t.pt"], "--ensemble-teacher does not apply to method 'kd'"),
    (["--method", "kd", "--teacher-sha256", "ab"], "no --teacher was given"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_run_arguments_fail_first_in_one_line(args, expected, capsys, tmp_path, nothing_is_loaded):
    assert main([*RUN, "--results", str(tmp_path / "r"), *args]) == 2
    assert expected in _one_line_error(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_fails_before_the_teacher_is_trained(capsys, tmp_path, nothing_is_loaded):
    assert main([*RUN, "--method", "kd", "--device", "cuda", "--results", str(tmp_path)]) == 2
    assert "no usable CUDA GPU" in _one_line_error(capsys)


def test_results_that_is_a_file_or_not_writable_fails_first(capsys, tmp_path, nothing_is_loaded):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    for results, expected in [(a_file, f"--results {a_file} is not a folder"),
                              (a_file / "sub", f"{a_file} is not a folder"),
                              ("/proc/self/kdbench-results", "cannot write in /proc/self")]:
        assert main([*RUN, "--method", "kd", "--results", str(results)]) == 2
        assert expected in _one_line_error(capsys)
    assert a_file.read_text() == "not a folder"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]  # the probe is removed


@pytest.mark.parametrize("args,expected", [
    (["--methods", "kdd"], "unknown method 'kdd'; valid methods: "),
    (["--methods", "kd", "fgfi"], "method 'fgfi' applies to none of the chosen protocols"),
    (["--jobs", "0"], "--jobs 0: must be at least 1"),
    (["--publish", "--dataset", "cifar10"], "--publish with --dataset cifar10"),
], ids=["typo", "wrong-task", "jobs-0", "publish-real-data"])
def test_bad_suite_arguments_fail_first(args, expected, capsys, tmp_path, nothing_is_loaded):
    code = main(["suite", "--tier", "smoke", "--protocols", "classification-smoke", "--quiet",
                 "--results", str(tmp_path), *args])
    assert code == 2
    err = _one_line_error(capsys)
    assert expected in err
    if args == ["--methods", "kdd"]:
        assert ", kd," in err


def test_a_full_disk_is_one_line_naming_the_path(capsys, tmp_path, monkeypatch):
    import bench.runner

    record = tmp_path / "classification-smoke@v2" / "kd" / "seed-0.json"

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(record))

    monkeypatch.setattr(bench.runner, "run_one", disk_full)
    monkeypatch.setattr(bench.runner.Workspace, "__init__", lambda self, *a, **k: None)
    assert main([*RUN, "--method", "baseline", "--seeds", "0", "--results", str(tmp_path)]) == 1
    err = _one_line_error(capsys)
    assert os.strerror(errno.ENOSPC) in err and str(record) in err


def test_every_method_declares_ranges_its_defaults_satisfy():
    """A range names a real hyperparameter, and the paper's default lies inside it."""
    for name in METHODS.names():
        cls = METHODS.get(name)
        assert set(cls.ranges) <= set(cls.defaults), name
        for key, interval in cls.ranges.items():
            check_hparam(name, key, cls.defaults[key], cls.defaults[key], interval)


@pytest.mark.parametrize("value,interval,ok", [
    (0.0, "[0, 1]", True), (1, "[0, 1]", True), (1.0001, "[0, 1]", False), (0.0, "(0, inf)", False),
    (1e9, "(0, inf)", True), (math.inf, "(0, inf)", False), (math.nan, "[0, inf)", False),
])
def test_intervals_are_read_with_their_brackets(value, interval, ok):
    from bench.errors import ConfigError

    if ok:
        check_hparam("m", "x", value, 1.0, interval)
    else:
        with pytest.raises(ConfigError, match=rf"'x' = .* is outside \{interval[0]}"):
            check_hparam("m", "x", value, 1.0, interval)


def test_a_write_that_fails_without_a_filename_names_the_target(tmp_path, monkeypatch):
    """A full disk during ``write`` raises OSError without a filename: the atomic writer names its target
    and leaves no temporary file behind."""
    from bench import paths

    target = tmp_path / "sub" / "seed-0.json"

    def fsync_fails(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(paths.os, "fsync", fsync_fails)
    with pytest.raises(OSError) as info:
        paths.atomic_write_text(target, "{}")
    assert info.value.filename == str(target) and info.value.errno == errno.ENOSPC
    assert list(target.parent.iterdir()) == []
