"""Latency stability: the batch-1 latency of one model measured in N separate processes.

Each process runs ``kdbench profile --json`` afresh (new interpreter, new
allocator, new thread pool); the coefficient of variation (std / mean) of their
medians is the figure the README reports. Run on an idle machine:
``python tests/benchmarks/latency_stability.py [--model tinyresnet_12] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tinyresnet_12")
    parser.add_argument("--input-size", nargs="+", default=["3", "32", "32"])
    parser.add_argument("--num-classes", default="20")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("kdbench")
    command = [str(exe), "profile", "--model", args.model, "--input-size", *args.input_size,
               "--num-classes", args.num_classes, "--threads", args.threads, "--json"]
    medians = []
    for run in range(args.runs):
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        profile = json.loads(output)[0]
        medians.append(profile["latency_ms"])
        print(f"process {run + 1}: median {profile['latency_ms']:.4f} ms, IQR {profile['latency_iqr_ms']:.4f} ms, "
              f"{profile['latency_repeats']} calls")
    mean, std = statistics.mean(medians), statistics.stdev(medians)
    print(f"{args.model} {'x'.join(args.input_size)}, {args.threads} thread(s), {profile['device_name']}: "
          f"mean {mean:.4f} ms, std {std:.4f} ms, CV {100 * std / mean:.2f}% over {args.runs} processes")


if __name__ == "__main__":
    main()
