"""Teacher-output cache speedup: one KD run of the mini protocol with the cache and without it.

Prints both training times, their ratio, and the two runs' test accuracy (they
differ only by float rounding in the teacher's batched forward pass).
Run: ``python tests/benchmarks/teacher_cache_speedup.py [--seed 0]``.
"""

from __future__ import annotations

import argparse
import tempfile

from bench.protocol import get_protocol
from bench.results import ResultsStore
from bench.runner import RunOptions, Workspace, build_method, run_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="classification-mini")
    parser.add_argument("--method", default="kd")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    protocol = get_protocol(args.protocol)
    workspace = Workspace(protocol, RunOptions())
    method = build_method(protocol, args.method)
    workspace.teacher_output_cache(method.teacher_features)  # built once, not per run
    seconds, top1 = {}, {}
    for cached in (True, False):
        with tempfile.TemporaryDirectory() as root:
            options = RunOptions(teacher_output_cache=cached)
            record = run_one(protocol, args.method, args.seed, ResultsStore(root), options, workspace)
        seconds[cached] = record["cost"]["train_seconds"]
        top1[cached] = record["metrics"][protocol.primary_metric]
    print(f"{protocol.key} {args.method} seed {args.seed}, {protocol.threads} thread(s)")
    print(f"live teacher:         {seconds[False]:.1f} s, {protocol.primary_metric} {top1[False]:.2f}")
    print(f"teacher-output cache: {seconds[True]:.1f} s, {protocol.primary_metric} {top1[True]:.2f}")
    print(f"speedup:              {seconds[False] / seconds[True]:.2f}x")


if __name__ == "__main__":
    main()
