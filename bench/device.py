"""The run's device and its backend settings (issue 16 §1).

Everything a run computes goes to the device the user asks for (``--device cuda``): the teacher,
assistants and ensemble members when the suite trains them (:class:`bench.teachers.TeacherZoo`), the
teacher-output cache's forward passes, the student, its extras, evaluation and profiling. Batches are
copied with ``non_blocking=True`` (:func:`bench.task.to_device`) from pinned memory where the data is
streamed (:class:`bench.streaming.Loading`).

On CUDA, :func:`configure_backends` sets cuDNN before any training: deterministic when the protocol asks
for it (:attr:`bench.protocol.Protocol.deterministic`), benchmark (autotuned) mode otherwise; the
settings go into the record's provenance (``backends``), so a record says which it had. On the CPU they
change nothing and the record says ``{"device_type": "cpu"}``.
"""

from __future__ import annotations

import os
from typing import Any

import torch



def configure_backends(device: str | torch.device, deterministic: bool) -> dict[str, Any]:
    """Set cuDNN for a run on ``device`` (see the module docstring) and return the settings to record."""
    device = torch.device(device)
    if device.type != "cuda":
        return {"device_type": device.type}
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    if deterministic:  # cuBLAS needs a fixed workspace for repeatable matrix products
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    return backend_settings(device)


def backend_settings(device: str | torch.device) -> dict[str, Any]:
    """What the record says about the backends a run had."""
    device = torch.device(device)
    if device.type != "cuda":
        return {"device_type": device.type}
    return {"device_type": "cuda", "cudnn_enabled": torch.backends.cudnn.enabled,
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_version": torch.backends.cudnn.version(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cuda": torch.version.cuda}
