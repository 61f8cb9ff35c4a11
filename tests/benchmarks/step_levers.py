"""Per-step speed levers for the mini tier (issue 15): what each would save, and whether it keeps the numbers.

For each mini protocol's student (the ``baseline`` method: the task's loss only, so the student's own
forward, backward and optimiser step are what is timed), one torch thread as the protocols run, the
same initial weights and the same batches, this times ``--steps`` steps after ``--warmup`` of:

- ``as-is``: what the engine does (SGD with torch's default implementation on CPU);
- ``foreach``: ``torch.optim.SGD(..., foreach=True)`` (one multi-tensor update instead of a loop);
- ``channels-last``: the model and its inputs in ``torch.channels_last`` memory format;
- ``compile``: ``torch.compile(student)`` (the first step's compile time is reported apart).

and compares each variant's weights after the timed steps with ``as-is``'s: ``bit-identical`` or the
largest absolute difference. A lever is only worth keeping if it is faster *and* bit-identical (else
the published numbers would move, i.e. the protocols would need new versions).

Run: ``python tests/benchmarks/step_levers.py [--protocols classification-mini] [--steps 30]
[--variants as-is foreach channels-last compile] [--rounds 2]``: the variants run in interleaved
rounds and the fastest round of each is reported. Timings need a quiet machine.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.distill import Distiller
from bench.engine import make_optimizer, seed_everything, set_threads, steps_per_epoch
from bench.protocol import get_protocol, protocols_of_tier
from bench.registry import METHODS
from bench.runner import RunOptions, Workspace

VARIANTS = ("as-is", "foreach", "channels-last", "compile")


def run_variant(ws: Workspace, variant: str, steps: int, warmup: int) -> tuple[float, float, torch.Tensor]:
    """(ms per timed step, seconds of the first step, the weights after every step as one vector)."""
    protocol = ws.protocol
    split, schedule = ws.splits["train"], protocol.schedule
    generator = seed_everything(0)
    student = ws.task.build_model(protocol.student, len(split.classes))
    model = student
    if variant == "channels-last":
        model = student.to(memory_format=torch.channels_last)
    distiller = Distiller(ws.task, model, protocol.student, METHODS.get("baseline")(), [])
    if variant == "compile":
        distiller.student = torch.compile(student)
    per_epoch = steps_per_epoch(ws.task, split, schedule.batch_size)
    optimizer, lr_scheduler = make_optimizer(list(student.parameters()), schedule, per_epoch * schedule.epochs,
                                             per_epoch, schedule.lr_for(protocol.student))
    if variant == "foreach":
        for group in optimizer.param_groups:  # read by SGD.step; the rate scheduler stays the engine's
            group["foreach"] = True
    student.train()
    batches, first, timed = iter(()), 0.0, 0.0
    for step in range(warmup + steps):
        batch = next(batches, None)
        if batch is None:
            batches = ws.task.train_batches(split, schedule.batch_size, protocol.augmentation, generator)
            batch = next(batches)
        if variant == "channels-last" and isinstance(batch.inputs, torch.Tensor) and batch.inputs.dim() == 4:
            batch.inputs = batch.inputs.contiguous(memory_format=torch.channels_last)
        start = time.perf_counter()
        loss = sum(distiller(batch).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        seconds = time.perf_counter() - start
        if step == 0:
            first = seconds
        if step >= warmup:
            timed += seconds
    distiller.close()
    weights = torch.cat([p.detach().flatten() for p in student.parameters()])
    return 1000 * timed / steps, first, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="+")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every variant (default: 2)")
    args = parser.parse_args()
    names = args.protocols or [p.name for p in protocols_of_tier("mini")]
    print(f"{'protocol':<22} {'variant':<14} {'ms/step':>8} {'vs as-is':>9} {'first step (s)':>15}  weights vs as-is")
    for name in names:
        protocol = get_protocol(name)
        set_threads(protocol.threads)
        ws = Workspace(protocol, RunOptions(progress=False))
        reference = None
        variants = ["as-is", *(v for v in args.variants if v != "as-is")]
        timings: dict[str, list[float]] = {v: [] for v in variants}
        results = {}
        for _ in range(args.rounds):  # interleaved rounds, the fastest of each: drift hits every variant alike
            for variant in variants:
                ms, first, weights = run_variant(ws, variant, args.steps, args.warmup)
                timings[variant].append(ms)
                results.setdefault(variant, (first, weights))
        for variant in variants:
            ms, (first, weights) = min(timings[variant]), results[variant]
            if reference is None:
                reference = (ms, weights)
                same, ratio = "-", "-"
            else:
                diff = (weights - reference[1]).abs().max().item()
                same = "bit-identical" if diff == 0 else f"max |diff| {diff:.2e}"
                ratio = f"{ms / reference[0]:.2f}x"
            print(f"{name:<22} {variant:<14} {ms:8.1f} {ratio:>9} {first:15.2f}  {same}", flush=True)


if __name__ == "__main__":
    main()
