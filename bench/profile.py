"""Efficiency of a model, measured one way for every entry: params, MACs/FLOPs, latency, throughput.

- **MACs and FLOPs** of one forward pass at batch 1, from
  :class:`torch.utils.flop_counter.FlopCounterMode`. It counts matrix
  multiplications and convolutions (conv, linear, matmul, bmm, attention) as
  2 FLOPs per multiply-accumulate; we report ``macs = flops / 2``. Papers and
  timm print MACs under the name "FLOPs": our ``macs`` is that number.
  Element-wise work (batch norm, activations, pooling, additions) is not
  counted, nor is post-processing outside ``forward`` (e.g. NMS or heatmap
  decoding in later tasks).
- **Latency** at batch 1: ``warmup`` untimed calls, then single calls timed
  until at least ``min_seconds`` and ``min_repeats`` have passed; the median and
  the interquartile range in milliseconds. On CUDA each call is synchronised.
- **Throughput** at the protocol's batch size: images per second from the
  median of timed batched calls.
- The **environment**: device and its name, torch threads (set explicitly),
  torch version, dtype.

Latency depends on what else the machine runs, so :func:`cached_profile` checks
each measurement: the spread (IQR / median) must be at most
:data:`MAX_LATENCY_SPREAD` and the 1-minute load average per core at most
:data:`MAX_LOAD_PER_CORE`. A spread too high is re-measured (up to
:data:`MEASURE_ATTEMPTS` times, keeping the steadiest); a measurement that still
fails is cached as ``"quiet": false`` and measured again by the next lookup made
on a quiet machine. Every profile carries its ``latency_spread``,
``load_per_core`` and ``quiet`` flag, so a record shows how its latency was taken.

The training cost of a run (wall time, teacher forward time and count, peak
memory) is measured by the engine and the Distiller, not here.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.errors import ConfigError
from bench.paths import atomic_write_text, cache_dir


@dataclass(frozen=True)
class ModelProfile:
    """The efficiency block of one model at one input size on one device."""

    model: str
    input_size: tuple[int, ...]
    params: int
    macs: int
    flops: int
    latency_ms: float
    latency_iqr_ms: float
    latency_repeats: int
    throughput_batch: int
    throughput_per_s: float
    device: str
    device_name: str
    threads: int
    torch: str
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["gmacs"] = self.macs / 1e9
        return data


def count_params(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def check_input_size(model: nn.Module, name: str, input_size: tuple[int, ...], device: str = "cpu") -> None:
    """Run one batch-1 forward pass; a failure names the model and the size, before any timing."""
    if not input_size or any(int(d) <= 0 for d in input_size):
        raise ConfigError(f"model {name!r}: input size {_size(input_size)} is not a positive shape")
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    except Exception as exc:  # noqa: BLE001 - any failure means the size does not fit this model
        raise ConfigError(f"model {name!r} cannot take input size {_size(input_size)}: "
                          f"{type(exc).__name__}: {exc}") from None


def count_macs(model: nn.Module, input_size: tuple[int, ...], device: str = "cpu") -> tuple[int, int]:
    """``(macs, flops)`` of one forward pass at batch 1 (see the module docstring for what counts)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_size, device=device))
    flops = int(counter.get_total_flops())
    return flops // 2, flops


def _timed_calls(fn, device: str, warmup: int, min_repeats: int, min_seconds: float) -> list[float]:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def profile_model(model: nn.Module, name: str, input_size: tuple[int, ...], batch_size: int,
                  device: str = "cpu", threads: int = 1, warmup: int = 20, min_repeats: int = 100,
                  min_seconds: float = 2.0) -> ModelProfile:
    """Measure ``model`` in eval mode; see the module docstring."""
    from bench.provenance import device_name

    torch.set_num_threads(threads)
    model = model.to(device).eval()
    input_size = tuple(int(d) for d in input_size)
    check_input_size(model, name, input_size, device)
    macs, flops = count_macs(model, input_size, device)
    single = torch.randn(1, *input_size, device=device)
    batch = torch.randn(batch_size, *input_size, device=device)
    with torch.no_grad():
        latencies = _timed_calls(lambda: model(single), device, warmup, min_repeats, min_seconds)
        batched = _timed_calls(lambda: model(batch), device, max(2, warmup // 5), 10, min_seconds)
    q1, _, q3 = statistics.quantiles(latencies, n=4)
    return ModelProfile(
        model=name, input_size=input_size, params=count_params(model), macs=macs, flops=flops,
        latency_ms=1000 * statistics.median(latencies), latency_iqr_ms=1000 * (q3 - q1),
        latency_repeats=len(latencies), throughput_batch=batch_size,
        throughput_per_s=batch_size / statistics.median(batched),
        device=device, device_name=device_name(device), threads=threads,
        torch=torch.__version__, dtype=str(single.dtype).removeprefix("torch."),
    )


def cached_profile(model_factory, name: str, input_size: tuple[int, ...], batch_size: int,
                   device: str = "cpu", threads: int = 1) -> dict[str, Any]:
    """The profile of architecture ``name``, measured once per machine and settings, then reused.

    The inference cost of a student does not depend on the method that trained
    it, so the suite measures each architecture once, on an idle machine before
    its runs start, and every record carries that measurement. A measurement taken on a busy
    machine (``"quiet": false``, see the module docstring) is replaced by the next lookup that
    finds the machine quiet.
    """
    from bench.provenance import device_name

    key_data = [name, list(input_size), batch_size, device, device_name(device), threads, torch.__version__]
    key = hashlib.sha256(json.dumps(key_data).encode()).hexdigest()[:20]
    path = cache_dir() / "profiles" / f"{key}.json"
    cached = json.loads(path.read_text()) if path.is_file() else None
    if cached is not None and (cached.get("quiet", False) or key in _TRIED_HERE or not machine_is_quiet()):
        return cached
    _TRIED_HERE.add(key)
    result = measure_quietly(
        lambda: profile_model(model_factory(), name, input_size, batch_size, device, threads).to_dict())
    if cached is not None and not result["quiet"] and cached.get("latency_spread", 1.0) <= result["latency_spread"]:
        return cached  # the new measurement is no steadier than the one kept
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


#: a latency whose interquartile range exceeds this fraction of its median was disturbed
MAX_LATENCY_SPREAD = 0.1
#: a 1-minute load average per core above this means other work shared the cores
MAX_LOAD_PER_CORE = 1.0
#: measurements tried before a disturbed latency is kept (the steadiest of them)
MEASURE_ATTEMPTS = 3
#: profile keys this process has measured: a process re-takes a disturbed latency at most once
_TRIED_HERE: set[str] = set()


def load_per_core() -> float:
    """The 1-minute load average divided by the core count (0.0 where the OS does not say)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return 0.0


def machine_is_quiet() -> bool:
    return load_per_core() <= MAX_LOAD_PER_CORE


def measure_quietly(measure) -> dict[str, Any]:
    """``measure()`` (a profile dict), repeated while its latency spread is above
    :data:`MAX_LATENCY_SPREAD` (at most :data:`MEASURE_ATTEMPTS` times); the steadiest result, with
    its ``latency_spread``, ``load_per_core``, ``measure_attempts`` and ``quiet`` (spread and load
    both within their limits)."""
    best = None
    for attempt in range(1, MEASURE_ATTEMPTS + 1):
        load = load_per_core()
        result = measure()
        result["latency_spread"] = result["latency_iqr_ms"] / result["latency_ms"] if result["latency_ms"] else 0.0
        result["load_per_core"] = max(load, load_per_core())
        if best is None or result["latency_spread"] < best["latency_spread"]:
            best = result
        best["measure_attempts"] = attempt
        if result["latency_spread"] <= MAX_LATENCY_SPREAD:
            break
    best["quiet"] = best["latency_spread"] <= MAX_LATENCY_SPREAD and best["load_per_core"] <= MAX_LOAD_PER_CORE
    return best


def _size(input_size) -> str:
    return "x".join(str(d) for d in input_size) or "()"
