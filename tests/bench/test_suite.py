"""The suite's job queue: a failing run surfaces as the error it raised, in the pool or not."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.protocol import get_protocol
from bench.runner import RunOptions
from bench.suite import JobQueue


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_job_raises_its_error(jobs, tmp_path):
    protocol = get_protocol("pose-smoke")  # takd does not apply to pose: the run raises before training
    with pytest.raises(ConfigError, match="does not apply to task 'pose'"):
        with JobQueue(jobs, 1, progress=False) as queue:
            queue.submit([(protocol, "takd", 0, str(tmp_path), RunOptions())])
    assert not list(tmp_path.rglob("*.json"))


# ----------------------------------------------------------------------------- stopping the suite


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid``, from /proc (Linux)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie that only waits for its reaper is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _files(root: Path) -> dict[str, int]:
    """Every finished file (an atomic write's temporary file, caught while it is written, is not one)."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")
@pytest.mark.parametrize("signals,to_group", [
    ((signal.SIGTERM,), False),  # kill PID: only the main process gets it
    # Ctrl-C twice on a terminal: the whole process group gets each (the first one does the stopping,
    # so this covers a single Ctrl-C too)
    ((signal.SIGINT, signal.SIGINT), True),
], ids=["sigterm", "double-ctrl-c"])
def test_a_signal_stops_every_worker_and_nothing_is_written_after_it(tmp_path, signals, to_group):
    """The suite (2 workers, 4 runs, so 2 are queued) is stopped after its first record: it exits
    promptly with 128 + the signal, no worker survives it, the queued runs never start and no file
    appears or changes under the results folder after the signal."""
    results = tmp_path / "results"
    suite = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "suite", "--tier", "smoke", "--protocols", "classification-smoke",
         "--methods", "baseline", "kd", "--jobs", "2", "--results", str(results), "--quiet"],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )
    try:
        deadline = time.monotonic() + 600
        while not list(results.rglob("seed-*.json")):
            assert suite.poll() is None, suite.communicate()
            assert time.monotonic() < deadline, "no record within 600 s"
            time.sleep(0.2)
        workers = _children(suite.pid)
        before = _files(results)
        for sig in signals:
            (os.killpg if to_group else os.kill)(suite.pid, sig)
            time.sleep(0.3)
        _, err = suite.communicate(timeout=60)  # a hang fails here
    finally:
        if suite.poll() is None:
            os.killpg(suite.pid, signal.SIGKILL)
    assert suite.returncode == 128 + signals[0], err
    assert f"stopped by {signal.Signals(signals[0]).name}" in err
    assert workers, "the suite had started no worker"
    time.sleep(2)  # a surviving worker would still be training, then writing
    assert not [pid for pid in workers if _alive(pid)]
    assert _files(results) == before
    assert not list(results.rglob(".tmp-*"))  # an interrupted write left nothing behind


def test_the_default_suite_runs_a_method_only_on_the_tiers_it_declares():
    """Issue 14's methods join the mini default once published there: the smoke tier (the gate) and the
    full tier run them by default, mini only when named; every published mini method stays in."""
    from bench.registry import METHODS
    from bench.suite import applicable_methods, default_methods

    mini, smoke = get_protocol("classification-mini"), get_protocol("classification-smoke")
    assert "crd" in default_methods(smoke) and "crd" not in default_methods(mini)
    assert "crd" in applicable_methods(mini)
    assert {"baseline", "kd", "takd", "mt-avg", "mt-you2017", "ca-mkd"} <= set(default_methods(mini))
    assert all(METHODS.get(m).default_tiers is None for m in default_methods(get_protocol("segmentation-mini")))
    assert "crd" in default_methods(get_protocol("cifar100-resnet32x4-resnet8x4"))
