"""Where a mini-tier training step spends its time (issue 15): batch making (collation and
augmentation), the teacher's forward pass (or its cached outputs), the student's forward pass with the
method's loss and feature hooks, the backward pass, and the optimiser and schedule step.

Each phase is timed around the engine's own calls (``Task.train_batches``, ``Distiller.__call__``,
``loss.backward()``, ``optimizer.step()``) for ``--steps`` steps after ``--warmup`` steps, one torch
thread as the protocols run; the teacher's share is the Distiller's own ``teacher_forward_seconds``.
Teachers come from the cache (trained first if absent, which takes minutes).

Run: ``python tests/benchmarks/step_profile.py [--protocol classification-mini --method kd] [--steps 40]``;
without ``--protocol``, every mini protocol with ``kd`` where it applies, else ``baseline``.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.distill import Distiller
from bench.engine import make_optimizer, seed_everything, set_threads, steps_per_epoch
from bench.protocol import get_protocol, protocols_of_tier
from bench.runner import RunOptions, Workspace, build_method

PHASES = ("batch", "teacher", "student+loss", "backward", "optimizer")


def profile_steps(protocol_name: str, method_name: str, steps: int, warmup: int) -> dict[str, float]:
    """Seconds per step of each phase, averaged over ``steps`` steps."""
    protocol = get_protocol(protocol_name)
    set_threads(protocol.threads)
    ws = Workspace(protocol, RunOptions(progress=False))
    method = build_method(protocol, method_name, {})
    _, inputs = ws.teacher_inputs(method, torch.device("cpu"))
    generator = seed_everything(0)
    student = ws.task.build_model(protocol.student, len(ws.splits["train"].classes))
    distiller = Distiller(ws.task, student, protocol.student, method, inputs)
    split = ws.splits["train"]
    probe = ws.task.collate(split, torch.arange(2), torch.zeros(2, dtype=torch.long), protocol.augmentation)
    distiller.build_extras(probe)
    schedule = protocol.schedule
    per_epoch = steps_per_epoch(ws.task, split, schedule.batch_size)
    optimizer, lr_scheduler = make_optimizer(distiller.trainable_parameters(), schedule, per_epoch * schedule.epochs,
                                             per_epoch, schedule.lr_for(protocol.student))
    student.train()
    totals = dict.fromkeys(PHASES, 0.0)
    batches = iter(())
    for step in range(warmup + steps):
        counting = step >= warmup
        t0 = time.perf_counter()
        batch = next(batches, None)
        if batch is None:
            batches = ws.task.train_batches(split, schedule.batch_size, protocol.augmentation, generator)
            batch = next(batches)
        t1 = time.perf_counter()
        teacher_before = distiller.teacher_forward_seconds
        loss = sum(distiller(batch).values())
        t2 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        optimizer.step()
        lr_scheduler.step()
        method.after_step(step + 1)
        t4 = time.perf_counter()
        if counting:
            teacher = distiller.teacher_forward_seconds - teacher_before
            totals["batch"] += t1 - t0
            totals["teacher"] += teacher
            totals["student+loss"] += t2 - t1 - teacher
            totals["backward"] += t3 - t2
            totals["optimizer"] += t4 - t3
    distiller.close()
    return {phase: seconds / steps for phase, seconds in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol")
    parser.add_argument("--method")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    from bench.suite import applicable_methods

    names = [args.protocol] if args.protocol else [p.name for p in protocols_of_tier("mini")]
    print(f"{'protocol':<22} {'method':<9} {'ms/step':>8}  " + "  ".join(f"{p:>13}" for p in PHASES))
    for name in names:
        method = args.method or ("kd" if "kd" in applicable_methods(get_protocol(name)) else "baseline")
        phases = profile_steps(name, method, args.steps, args.warmup)
        total = sum(phases.values())
        shares = "  ".join(f"{1000 * s:7.1f} ({100 * s / total:2.0f}%)" for s in phases.values())
        print(f"{name:<22} {method:<9} {1000 * total:8.1f}  {shares}")


if __name__ == "__main__":
    main()
