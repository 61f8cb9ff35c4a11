"""Teacher-output cache: the teacher's features computed once per augmentation variant.

On a CPU the teacher's forward pass dominates a distillation run. When the
protocol's augmentation is a finite set (e.g. horizontal flips: 2 variants),
the teacher's features at the points a method reads (``"logits"``, FPN levels,
head outputs) are computed once for every (training sample, variant) per
(teacher, dataset, augmentation, feature points), stored under
``<cache>/teacher_outputs/``, and reused across methods and seeds. The teacher
is frozen and in eval mode, so a sample's features do not depend on the batch
it came in; cached and live losses agree within float rounding
(``tests/bench/test_teacher_cache.py``).

The cache key holds the teacher's sha256 and the training data's fingerprint
(:func:`bench.identity.data_fingerprint`), so a cache built on other or edited
data is never reused; each file carries a content hash checked on load
(:func:`bench.paths.load_checked`), so an edited or truncated cache is rebuilt
with a warning, never used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import ConfigError
from bench.paths import cache_dir, load_checked, save_checked
from bench.task import Split, Task


def _index(value: Any, indices: torch.Tensor, variants: torch.Tensor) -> Any:
    if isinstance(value, torch.Tensor):
        return value[indices, variants]
    return {k: _index(v, indices, variants) for k, v in value.items()}


def _stack(chunks: list[Any], dim: int) -> Any:
    """Concatenate (dim 0) or stack (dim 1) tensors, or dicts of them, key by key."""
    if isinstance(chunks[0], torch.Tensor):
        return torch.cat(chunks) if dim == 0 else torch.stack(chunks, dim=1).contiguous()
    return {k: _stack([c[k] for c in chunks], dim) for k in chunks[0]}


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return {k: _detach(v) for k, v in value.items()}


class TeacherOutputCache:
    """Teacher features ``{point: (N, variants, ...)}`` looked up by sample index and variant."""

    def __init__(self, features: dict[str, Any]):
        self.features = features

    def lookup(self, indices: torch.Tensor, variants: torch.Tensor) -> dict[str, Any]:
        return {point: _index(value, indices, variants) for point, value in self.features.items()}

    @classmethod
    def build(cls, teacher: nn.Module, teacher_name: str, task: Task, split: Split, augmentation: str,
              points: tuple[str, ...], batch_size: int = 64) -> tuple[TeacherOutputCache, int]:
        """Run ``teacher`` over every (sample, variant); return the cache and the forwards done."""
        from bench.distill import FeatureRecorder, with_logits

        n_variants = task.num_augment_variants(augmentation)
        if n_variants is None:
            raise ConfigError(f"augmentation {augmentation!r} is random (no finite set of variants): the teacher "
                              "runs live, its outputs cannot be cached")
        recorder = FeatureRecorder(teacher, {p: task.module_path(teacher_name, p) for p in points})
        teacher.eval()
        device = next(teacher.parameters()).device  # the forwards run where the teacher is; the cache is on the CPU
        per_variant = []
        try:
            with torch.no_grad():
                for v in range(n_variants):
                    chunks = []
                    for start in range(0, len(split), batch_size):
                        indices = torch.arange(start, min(start + batch_size, len(split)))
                        batch = task.collate(split, indices, torch.full_like(indices, v), augmentation).to(device)
                        output, features = recorder.record(lambda b=batch: task.forward_features(teacher, b))
                        features = with_logits(features, output)
                        chunks.append({p: _detach(features[p]) for p in points})
                    per_variant.append(_stack(chunks, dim=0))
        finally:
            recorder.remove()
        return cls(_stack(per_variant, dim=1)), len(split) * n_variants

    @classmethod
    def load_or_build(cls, teacher: nn.Module, teacher_name: str, teacher_sha256: str, data: str,
                      task: Task, split: Split, augmentation: str, points: tuple[str, ...],
                      root: Path | None = None) -> tuple[TeacherOutputCache, int]:
        """From disk if present and intact, else built and saved; also returns forwards spent now (0 on
        a hit). ``data`` is the fingerprint of the dataset ``split`` (the training split) comes from."""
        key_data = [teacher_sha256, data, "train", augmentation, sorted(points)]
        if task.preprocessing():  # e.g. a protocol's own normalisation: other inputs, other outputs
            key_data.append(task.preprocessing())
        key = hashlib.sha256(json.dumps(key_data).encode()).hexdigest()
        path = (Path(root) if root else cache_dir() / "teacher_outputs") / f"{key}.pt"
        stored = load_checked(path, "teacher-output cache")
        if stored is not None:
            return cls(stored), 0
        cache, forwards = cls.build(teacher, teacher_name, task, split, augmentation, points)
        save_checked(cache.features, path)
        return cache, forwards
