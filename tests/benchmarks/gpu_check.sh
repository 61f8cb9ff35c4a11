#!/usr/bin/env bash
# Issue 16's GPU check, prepared to run in one go on a machine with a CUDA GPU (about 5 minutes):
#   bash tests/benchmarks/gpu_check.sh [OUT]        (after the README's install command)
# 1. a classification-mini KD run on cuda in fp32 and in bf16 (kdbench run: teacher, output cache,
#    student, evaluation and profiling on the GPU; the records name the device, precision, cuDNN settings);
# 2. 300 steps of the CIFAR-100 resnet32x4 -> resnet8x4 KD step on random data in fp32 and bf16:
#    images/s, GPU memory and the projected time of the 240-epoch run (tests/benchmarks/cifar_kd_step.py).
# Everything it prints and the records go to OUT (default: gpu-check-<date>).
set -euo pipefail
out=${1:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
kdbench=${KDBENCH:-.venv/bin/kdbench}
python=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt" || true
for precision in fp32 bf16; do
  /usr/bin/time -v "$kdbench" run --protocol classification-mini --method kd --seeds 0 --device cuda \
    --precision "$precision" --results "$out/records" --quiet 2>&1 | tee "$out/mini-kd-$precision.txt"
done
for precision in fp32 bf16; do
  "$python" tests/benchmarks/cifar_kd_step.py --device cuda --precision "$precision" --steps 300 --warmup 20 \
    2>&1 | tee "$out/cifar-kd-step-$precision.txt"
done
"$python" - "$out/records" <<'PY' | tee "$out/records.txt"
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).rglob("seed-*.json")):
    r = json.loads(path.read_text())
    print(path.parent.parent.name, r["precision"], r["metrics"], f"{r['cost']['train_seconds']:.1f} s",
          r["provenance"]["device"], r["provenance"]["device_name"], r["provenance"]["backends"])
PY
