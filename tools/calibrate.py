"""Calibrate a protocol candidate on its validation split: the teacher, the baseline and a sensitivity probe.

    python tools/calibrate.py tasks.openmmlab.protocols:detection_mini --set teacher_epochs=60 \
        --probe fgfi --seeds 0 1 2

``MODULE:FUNCTION`` builds the candidate protocol from the ``--set`` keywords (numbers or strings). The
teacher is trained on the candidate's recipe (through the teacher cache, as a run would), then the
baseline student and the probe method for each seed; every model is scored on the **validation**
split only (the test split is not read). Printed: the teacher's and each seed's validation metric,
the teacher-baseline gap, the probe's paired differences to the baseline, and the difference a
Holm-adjusted paired t test over ``--comparisons`` methods could detect at 80% power with the
candidate's seed count (Bonferroni level, Holm's worst case). Nothing is written but the cache.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time

import torch


def value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidate", help="MODULE:FUNCTION building the candidate protocol")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="keywords of FUNCTION")
    parser.add_argument("--probe", default="kd", help="the sensitivity probe's method (default kd)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--comparisons", type=int, default=None,
                        help="methods compared with the baseline in the protocol's table "
                             "(default: its default methods)")
    args = parser.parse_args(argv)

    from bench.distill import Distiller
    from bench.engine import seed_everything, set_threads, train
    from bench.registry import load_plugins
    from bench.runner import RunOptions, Workspace, bind_training_data, build_method
    from bench.stats import detectable_difference, summarize

    load_plugins()
    module, function = args.candidate.split(":")
    keywords = dict(item.split("=", 1) for item in args.set)
    protocol = getattr(importlib.import_module(module), function)(**{k: value(v) for k, v in keywords.items()})
    ws = Workspace(protocol, RunOptions())
    task, splits, metric = ws.task, ws.splits, protocol.primary_metric
    print(f"candidate {protocol.key} ({args.candidate} {' '.join(args.set)}): {len(splits['train'])} train, "
          f"{len(splits['val'])} val images; metric {metric} on val", flush=True)

    start = time.perf_counter()
    teaching, _ = ws.teacher_inputs(build_method(protocol, args.probe), cached=False)
    teacher = teaching.stages[0][1].model  # the protocol's teacher (the probe must be a single-teacher method)
    teacher_value = task.evaluate(teacher, splits["val"], protocol.schedule.batch_size)[metric]
    ready = time.perf_counter() - start
    print(f"teacher {protocol.teacher.model}: {metric} {teacher_value:.2f} (ready in {ready:.0f} s)", flush=True)

    def student_value(method_name: str, seed: int) -> float:
        method = build_method(protocol, method_name)
        _, inputs = ws.teacher_inputs(method)
        set_threads(protocol.threads)
        generator = seed_everything(seed)
        student = task.build_model(protocol.student, len(splits["train"].classes))
        distiller = Distiller(task, student, protocol.student, method, inputs)
        bind_training_data(method, task, splits["train"], protocol.schedule)
        probe = task.collate(splits["train"], torch.arange(2), torch.zeros(2, dtype=torch.long), protocol.augmentation)
        distiller.build_extras(probe)
        began = time.perf_counter()
        train(distiller, splits["train"], protocol.schedule, protocol.augmentation, generator,
              model_name=protocol.student)
        distiller.close()
        result = task.evaluate(student, splits["val"], protocol.schedule.batch_size)[metric]
        seconds = time.perf_counter() - began
        print(f"  {method_name:<12} seed {seed}: {metric} {result:.2f} ({seconds:.0f} s)", flush=True)
        return result

    baseline = [student_value("baseline", seed) for seed in args.seeds]
    probe = [student_value(args.probe, seed) for seed in args.seeds]
    base, diff = summarize(baseline), summarize([p - b for p, b in zip(probe, baseline, strict=True)])
    from bench.suite import default_methods

    m = args.comparisons or max(1, len([n for n in default_methods(protocol) if n != "baseline"]))
    n = len(protocol.seeds)
    print(f"baseline {metric}: {base.mean:.2f} +- {base.std:.2f} over seeds {args.seeds}; teacher - baseline "
          f"{teacher_value - base.mean:+.2f} (worst seed {teacher_value - max(baseline):+.2f})")
    print(f"probe {args.probe} - baseline: {diff.mean:+.2f}, sd {diff.std:.2f} over {diff.n} seeds")
    from dataclasses import replace

    at_n = replace(diff, n=n)
    print(f"detectable at 80% power with the candidate's {n} seeds and {m} comparisons (level 0.05/{m}): "
          f"{detectable_difference(at_n, 0.05 / m):.2f} {metric} points (from the probe's spread of differences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
