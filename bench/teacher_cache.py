"""Teacher-output cache: the teacher's logits computed once per augmentation variant.

On a CPU the teacher's forward pass dominates a KD run. When the protocol's
augmentation is a finite set (e.g. horizontal flips: 2 variants), the teacher's
output for every (training sample, variant) is computed once per (teacher,
dataset, augmentation), stored under ``<cache>/teacher_outputs/``, and reused
across methods and seeds. Only the ``"logits"`` feature point is cached; methods
that read other teacher features run the teacher live.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from bench.paths import atomic_save, cache_dir
from bench.task import Split, Task

CACHEABLE_POINTS = ("logits",)


class TeacherOutputCache:
    """Teacher logits of shape ``(N, variants, C)`` looked up by sample index and variant."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def lookup(self, indices: torch.Tensor, variants: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.logits[indices, variants]}

    @staticmethod
    def supports(teacher_points: tuple[str, ...]) -> bool:
        return bool(teacher_points) and all(p in CACHEABLE_POINTS for p in teacher_points)

    @classmethod
    def build(cls, teacher: nn.Module, task: Task, split: Split, augmentation: str,
              batch_size: int = 256) -> tuple[TeacherOutputCache, int]:
        """Run ``teacher`` over every (sample, variant); return the cache and the forwards done."""
        n_variants = task.num_augment_variants(augmentation)
        teacher.eval()
        outputs = []
        with torch.no_grad():
            for v in range(n_variants):
                chunks = []
                for start in range(0, len(split), batch_size):
                    raw = split.inputs[start : start + batch_size]
                    variants = torch.full((len(raw),), v, dtype=torch.long)
                    chunks.append(teacher(task.prepare(task.augment(raw, variants, augmentation))))
                outputs.append(torch.cat(chunks))
        return cls(torch.stack(outputs, dim=1).contiguous()), len(split) * n_variants

    @classmethod
    def load_or_build(cls, teacher: nn.Module, teacher_sha256: str, dataset_key: str, task: Task,
                      split: Split, augmentation: str, root: Path | None = None
                      ) -> tuple[TeacherOutputCache, int]:
        """From disk if present, else built and saved; also returns forwards spent now (0 on a hit)."""
        key = hashlib.sha256(json.dumps([teacher_sha256, dataset_key, augmentation]).encode()).hexdigest()
        path = (Path(root) if root else cache_dir() / "teacher_outputs") / f"{key}.pt"
        if path.is_file():
            return cls(torch.load(path, map_location="cpu", weights_only=True)), 0
        cache, forwards = cls.build(teacher, task, split, augmentation)
        atomic_save(cache.logits, path)
        return cache, forwards
