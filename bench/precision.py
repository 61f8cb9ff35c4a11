"""Mixed-precision training (issue 16 §2): ``--precision fp32|bf16|fp16``.

How it is applied (:func:`bench.engine.train`, :class:`bench.distill.Distiller`):

- The models' forward passes (the student's training pass and any live teacher pass) run under
  ``torch.autocast`` at the run's precision, on the run's device type (``cuda`` or ``cpu``).
- The method's losses are computed outside autocast, on the forward passes' outputs cast to float32
  (:func:`as_float32`): every soft-max at a temperature, every KL divergence, every feature distance and
  every extra module (connectors, projection heads, memory banks) runs in fp32, as the KD losses need
  (a soft-max of logits divided by T in fp16 underflows; bf16 keeps 8 bits of mantissa).
- fp16 scales the loss with :class:`torch.amp.GradScaler` (skipped steps and the scale are part of the
  checkpoint); bf16 has fp32's range and needs none.
- Evaluation (the recorded metrics) stays in fp32, so a precision changes how the student was trained,
  never how it is measured.

The precision is part of a run's identity, not of the protocol's: a bf16 run of a protocol is another
entry of the same table (labelled ``bf16``), never mixed with the protocol's fp32 runs. ``fp32`` is the
default and leaves every identity, and so every published record, as it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from bench.errors import ConfigError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEFAULT = "fp32"


def check_precision(name: str) -> str:
    """``name`` if it is a known precision; a :class:`ConfigError` listing them otherwise."""
    if name not in PRECISIONS:
        raise ConfigError(f"--precision {name!r}: unknown; use one of {', '.join(PRECISIONS)}")
    return name


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The forward passes' context: autocast to ``precision`` on ``device``'s type (none for fp32)."""
    if precision == DEFAULT:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=PRECISIONS[check_precision(precision)])


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """Autocast off inside (the losses' region), whatever the caller enabled."""
    if not (torch.is_autocast_enabled("cuda") or torch.is_autocast_enabled("cpu")):
        yield
        return
    with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
        yield


def as_float32(value: Any) -> Any:
    """``value`` with every floating-point tensor in it (through dicts, lists and tuples) cast to float32;
    other values unchanged. A float32 tensor is returned as it is (no copy)."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() and value.dtype != torch.float32 else value
    if isinstance(value, dict):
        return {k: as_float32(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(as_float32(v) for v in value))
    if isinstance(value, list | tuple):
        return type(value)(as_float32(v) for v in value)
    return value


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16 (gradients would underflow unscaled); None for fp32 and bf16."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None
