"""DDP runs (bench/distributed.py, issue 16 §3) on 2 CPU processes with the gloo backend: launched by
torchrun as a user would, the same seed gives the same numbers, one record is written (by rank 0), the
run is its own entry; CRD's memory bank stays equal on every rank; the batch is split over the ranks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import distributed
from bench.cli import main
from bench.distributed import World

KDBENCH = shutil.which("kdbench") or str(Path(sys.executable).with_name("kdbench"))


def torchrun(tmp_path: Path, results: Path, method: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", KDBENCH, "run",
               "--protocol", "classification-smoke", "--method", method, "--seeds", "0", "--results", str(results),
               "--quiet", *extra]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.rglob("seed-*.json"))]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["crd", "dml"])  # a memory bank; a peer with its own optimiser
def test_two_gloo_processes_repeat_a_seed_and_write_one_record(tmp_path, method):
    """Run twice (the second with checkpoints, which change no number): the same numbers."""
    first = torchrun(tmp_path, tmp_path / "a", method)
    assert first.returncode == 0, first.stderr[-3000:]
    second = torchrun(tmp_path, tmp_path / "b", method, "--checkpoint-every", "1")
    assert second.returncode == 0, second.stderr[-3000:]
    (a,), (b,) = records(tmp_path / "a"), records(tmp_path / "b")
    assert a["metrics"] == b["metrics"] and a["final_losses"] == b["final_losses"]
    assert a["identity"]["processes"] == 2 and a["identity"]["label"] == "2 processes"
    assert not a["identity"]["default"] and a["provenance"]["processes"] == 2
    assert first.stdout.count("2 processes] seed 0:") == 1  # rank 0 alone reports
    assert not list((tmp_path / "b").rglob("*.ckpt.pt"))  # removed once the record is written
    rows = (tmp_path / "a").rglob("seed-0.epochs.csv")
    assert next(rows).read_text().count("\n") > 1


def test_each_rank_takes_every_nth_sample_of_the_global_batch(monkeypatch):
    batch = torch.arange(12)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(distributed, "_world", World(rank, 3, rank))
        parts.append(distributed.shard(batch))
    assert [p.tolist() for p in parts] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    monkeypatch.setattr(distributed, "_world", World(0, 5, 0))
    with pytest.raises(Exception, match="does not split evenly over 5 processes"):
        distributed.check_batch_size(12)


def _memory_bank_worker(rank: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    from baselines.crd import ContrastMemory

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    distributed._world = World(rank, 2, rank)
    torch.manual_seed(0)
    memory = ContrastMemory(dim=4, num_samples=10, temperature=0.07, momentum=0.5)
    generator = torch.Generator().manual_seed(100 + rank)  # each rank's shard has other embeddings
    v_s, v_t = torch.randn(2, 4, generator=generator), torch.randn(2, 4, generator=generator)
    idx = torch.tensor([2 * rank, 2 * rank + 1])  # rank 0 holds samples 0, 1; rank 1 samples 2, 3
    contrast = torch.randint(0, 10, (2, 3))
    memory(v_s, v_t, idx, torch.cat([idx[:, None], contrast], 1))
    torch.save({"s": memory.memory_s, "t": memory.memory_t}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_crd_memory_bank_takes_every_ranks_rows(tmp_path):
    import torch.multiprocessing as mp

    mp.start_processes(_memory_bank_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       start_method="spawn")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    torch.manual_seed(0)
    from baselines.crd import ContrastMemory

    initial = ContrastMemory(dim=4, num_samples=10, temperature=0.07, momentum=0.5)
    assert torch.equal(r0["s"], r1["s"]) and torch.equal(r0["t"], r1["t"])  # the same bank on both ranks
    changed = (r0["s"] != initial.memory_s).any(dim=1).nonzero().flatten().tolist()
    assert changed == [0, 1, 2, 3]  # both ranks' samples were written


def test_gpus_needs_cuda_and_suite_refuses_torchrun(tmp_path, monkeypatch, capsys):
    code = main(["run", "--protocol", "classification-smoke", "--method", "kd", "--gpus", "2",
                 "--results", str(tmp_path)])
    assert code == 2 and "--gpus 2: needs --device cuda" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    code = main(["suite", "--tier", "smoke", "--results", str(tmp_path)])
    assert code == 2 and "does not run under torchrun" in capsys.readouterr().err
