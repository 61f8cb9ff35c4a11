"""Engine overhead: KDBench's training loop against a minimal hand-written PyTorch loop.

Both train the same student (the mini protocol's) on the same data, batches and
augmentation with one torch thread; the runs alternate, and the median over
repeats is compared. Run: ``python tests/benchmarks/engine_overhead.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
import torch.nn.functional as F

from bench.distill import Distiller
from bench.engine import make_optimizer, seed_everything, set_threads, train
from bench.protocol import get_protocol
from bench.registry import METHODS, TASKS


def hand_written_loop(model, inputs_u8, targets, schedule, generator) -> float:
    """The least a PyTorch user would write: shuffle, flip, normalise, CE, SGD step, cosine step."""
    steps_per_epoch = len(targets) // schedule.batch_size
    optimizer, lr_scheduler = make_optimizer(model.parameters(), schedule, steps_per_epoch * schedule.epochs)
    model.train()
    start = time.perf_counter()
    for _ in range(schedule.epochs):
        order = torch.randperm(len(targets), generator=generator)
        flips = torch.randint(2, (len(targets),), generator=generator)
        for i in range(steps_per_epoch):
            idx = order[i * schedule.batch_size : (i + 1) * schedule.batch_size]
            x = inputs_u8[idx]
            x = torch.where(flips[idx].bool()[:, None, None, None], x.flip(-1), x)
            x = (x.float() / 255.0 - 0.5) / 0.25
            loss = F.cross_entropy(model(x), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            lr_scheduler.step()
    return time.perf_counter() - start


def engine_loop(task, model, student_name, split, schedule, augmentation, generator) -> float:
    distiller = Distiller(task, model, student_name, METHODS.get("baseline")())
    return train(distiller, split, schedule, augmentation, generator).wall_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    protocol = get_protocol("classification-mini")
    set_threads(protocol.threads)
    schedule = dataclasses.replace(protocol.schedule, epochs=args.epochs)
    task = TASKS.get(protocol.task)()
    split = task.load_splits(protocol.dataset)["train"]
    hand, engine = [], []
    for repeat in range(args.repeats + 1):  # the first round warms up and is dropped
        seed_everything(repeat)
        model = task.build_model(protocol.student, len(split.classes))
        h = hand_written_loop(model, split.inputs, split.targets, schedule, torch.Generator().manual_seed(repeat))
        seed_everything(repeat)
        model = task.build_model(protocol.student, len(split.classes))
        e = engine_loop(task, model, protocol.student, split, schedule, protocol.augmentation,
                        torch.Generator().manual_seed(repeat))
        if repeat:
            hand.append(h)
            engine.append(e)
    h, e = statistics.median(hand), statistics.median(engine)
    steps = args.epochs * (len(split) // schedule.batch_size)
    print(f"model {protocol.student}, batch {schedule.batch_size}, {steps} steps, {protocol.threads} thread(s), "
          f"median of {args.repeats}")
    print(f"hand-written loop: {h:.3f} s ({1000 * h / steps:.2f} ms/step)")
    print(f"kdbench engine:    {e:.3f} s ({1000 * e / steps:.2f} ms/step)")
    print(f"engine overhead:   {100 * (e / h - 1):+.1f}%")


if __name__ == "__main__":
    main()
