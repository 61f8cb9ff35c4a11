"""Overhead of the per-epoch log and of checkpoints on a mini run (issue 16: target <= 2%).

Trains the classification-mini student (``baseline``, the protocol's schedule, one torch thread) three
ways, alternating, and compares the median wall time of :func:`bench.engine.train` measured from outside
(the engine's own ``wall_seconds`` leaves logging and checkpoint time out, so it cannot measure them):

- ``bare``: no epoch log, no checkpoint;
- ``log``: the per-epoch log as every run has it (loss sums per step, a row per epoch, the CSV written);
- ``log + checkpoint``: that and a checkpoint after every epoch (``--checkpoint-every 1``, the most
  frequent setting; written atomically, removed at the end as when the record is written).

All three give the same weights (checked). Wall times of whole runs vary by several per cent between
repeats on a VM, more than the overhead, so the script also times the logging and checkpoint code
itself, inside the runs: every call of the engine's ``log_epoch`` and of ``Checkpointing.save``, the
CSV write and the checkpoint's removal, plus the per-step loss-sum accumulation (timed over the same
number of steps on the run's own loss tensors), as a share of the bare run's median.

Run: ``python tests/benchmarks/log_checkpoint_overhead.py [--repeats 3] [--epochs E]``; needs a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.checkpoint import Checkpointing
from bench.distill import Distiller
from bench.engine import seed_everything, set_threads, train
from bench.epoch_log import EpochLog
from bench.protocol import get_protocol
from bench.registry import METHODS
from bench.task import make_task


SPENT: dict[str, float] = {}


def timed(name: str, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] = SPENT.get(name, 0.0) + time.perf_counter() - start
    return wrapper


def one_run(task, protocol, split, schedule, mode: str, folder: Path) -> tuple[float, torch.Tensor]:
    generator = seed_everything(0)
    model = task.build_model(protocol.student, len(split.classes))
    distiller = Distiller(task, model, protocol.student, METHODS.get("baseline")())
    log = EpochLog() if mode != "bare" else None
    checkpoint = Checkpointing.open(folder / "run.ckpt.pt", 1, {"run": mode}) if "checkpoint" in mode else None
    start = time.perf_counter()
    train(distiller, split, schedule, protocol.augmentation, generator, model_name=protocol.student, log=log,
          checkpoint=checkpoint)
    if log is not None:
        timed("csv", log.write_csv)(folder / "run.epochs.csv")
    if checkpoint is not None:
        timed("remove", checkpoint.remove)()
    seconds = time.perf_counter() - start
    return seconds, torch.cat([p.detach().flatten() for p in model.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, help="default: the protocol's")
    args = parser.parse_args()
    protocol = get_protocol("classification-mini")
    set_threads(protocol.threads)
    schedule = protocol.schedule if args.epochs is None else dataclasses.replace(protocol.schedule, epochs=args.epochs)
    task = make_task(protocol)
    split = task.load_splits(protocol.dataset)["train"]
    import bench.engine

    bench.engine.log_epoch = timed("log_epoch", bench.engine.log_epoch)
    Checkpointing.save = timed("checkpoint", Checkpointing.save)
    modes = ("bare", "log", "log + checkpoint")
    times: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats + 1):  # the first round warms up and is dropped
            weights = {}
            for mode in modes if repeat % 2 == 0 else reversed(modes):
                seconds, weights[mode] = one_run(task, protocol, split, schedule, mode, Path(scratch))
                if repeat:
                    times[mode].append(seconds)
            assert all(torch.equal(weights["bare"], w) for w in weights.values()), "logging changed the weights"
    steps = schedule.epochs * (len(split) // schedule.batch_size)
    bare = statistics.median(times["bare"])
    print(f"{protocol.key}: student {protocol.student}, baseline, {schedule.epochs} epochs, {steps} steps, "
          f"{protocol.threads} thread(s); median of {args.repeats} alternating repeats")
    terms = [torch.tensor(2.3, requires_grad=True) * 1.0, torch.tensor(0.7, requires_grad=True) * 1.0]
    start, sums = time.perf_counter(), {}
    for _ in range(steps):  # what train() adds per step when it logs
        for name, value in zip(("ce", "kd"), terms, strict=True):
            sums[name] = sums.get(name, 0.0) + value.detach()
    per_step = time.perf_counter() - start
    rounds = args.repeats + 1
    print(f"inside the runs, per run: log_epoch {SPENT.get('log_epoch', 0) / (2 * rounds):.4f} s, CSV "
          f"{SPENT.get('csv', 0) / (2 * rounds):.4f} s, checkpoints {SPENT.get('checkpoint', 0) / rounds:.4f} s "
          f"({schedule.epochs - 1} saves), removal {SPENT.get('remove', 0) / rounds:.4f} s, loss sums "
          f"{per_step:.4f} s")
    log_cost = (SPENT.get("log_epoch", 0) + SPENT.get("csv", 0)) / (2 * rounds) + per_step
    ckpt_cost = (SPENT.get("checkpoint", 0) + SPENT.get("remove", 0)) / rounds
    print(f"direct cost against the bare median: log {100 * log_cost / bare:.2f}%, log + checkpoint every epoch "
          f"{100 * (log_cost + ckpt_cost) / bare:.2f}%")
    for mode in modes:
        t = statistics.median(times[mode])
        every = ", ".join(f"{x:.2f}" for x in times[mode])
        print(f"{mode:17s} {t:7.2f} s  {100 * (t / bare - 1):+5.1f}%  (all: {every})")


if __name__ == "__main__":
    main()
