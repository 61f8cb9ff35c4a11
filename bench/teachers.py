"""Teacher zoo: teachers trained by the suite from a recipe, or loaded from a user file.

A suite-trained teacher is cached under ``<cache>/teachers/<recipe hash>.pt`` as a
state dict (weights only) with a JSON sidecar holding its sha256, recipe, test
metrics and training time. Loading re-checks the sha256 and uses
``torch.load(..., weights_only=True)``; a file whose hash or tensor shapes do not
match stops the run before any training.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.errors import TeacherMismatchError
from bench.paths import atomic_save, atomic_write_text, cache_dir, sha256_file
from bench.protocol import Protocol
from bench.task import Split, Task


@dataclass
class Teacher:
    """A frozen-ready teacher model with where it came from."""

    model: nn.Module
    model_name: str
    sha256: str
    source: str  # "zoo" (trained and cached by the suite) or "file"
    metrics: dict[str, float] = field(default_factory=dict)
    train_seconds: float = 0.0
    path: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model_name, "sha256": self.sha256, "source": self.source,
            "metrics": self.metrics, "train_seconds": self.train_seconds,
        }


def recipe_hash(protocol: Protocol) -> str:
    """Hash of everything that determines the teacher's weights: task, dataset and recipe."""
    recipe = {
        "task": protocol.task,
        "dataset": protocol.dataset,
        "augmentation": protocol.augmentation,
        "threads": protocol.threads,
        "teacher": protocol.to_dict()["teacher"],
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def load_state_dict_checked(model: nn.Module, path: Path, expected_sha256: str | None) -> str:
    """Load weights from ``path`` into ``model`` after checking the file's sha256; return the hash."""
    if not path.is_file():
        raise TeacherMismatchError(f"teacher file {path} does not exist")
    actual = sha256_file(path)
    if expected_sha256 and actual != expected_sha256:
        raise TeacherMismatchError(
            f"teacher file {path}: sha256 {actual} does not match the expected {expected_sha256}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise TeacherMismatchError(f"teacher file {path} is not a weights-only state dict: {exc}") from None
    if not isinstance(state, dict):
        raise TeacherMismatchError(f"teacher file {path} does not hold a state dict")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = []
        if missing:
            detail.append(f"missing {missing[:3]}")
        if unexpected:
            detail.append(f"unexpected {unexpected[:3]}")
        if wrong:
            k = wrong[0]
            detail.append(f"shape of {k!r} is {tuple(state[k].shape)}, the model expects {tuple(expected[k].shape)}")
        raise TeacherMismatchError(f"teacher file {path} does not fit the model: {'; '.join(detail)}")
    model.load_state_dict(state)
    return actual


class TeacherZoo:
    """Train-or-load teachers keyed by the protocol's recipe hash."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else cache_dir() / "teachers"

    def paths(self, protocol: Protocol) -> tuple[Path, Path]:
        key = recipe_hash(protocol)
        return self.root / f"{key}.pt", self.root / f"{key}.json"

    def is_cached(self, protocol: Protocol) -> bool:
        weights, meta = self.paths(protocol)
        return weights.is_file() and meta.is_file()

    def get(self, protocol: Protocol, task: Task, splits: dict[str, Split], progress: bool = False) -> Teacher:
        """The protocol's teacher: from the cache if present, else trained now and cached."""
        weights, meta_path = self.paths(protocol)
        if weights.is_file() and meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            model = task.build_model(protocol.teacher.model, len(splits["train"].classes))
            sha = load_state_dict_checked(model, weights, meta["sha256"])
            return Teacher(model, protocol.teacher.model, sha, "zoo", meta["metrics"], meta["train_seconds"],
                           str(weights))
        return self._train(protocol, task, splits, progress)

    def _train(self, protocol: Protocol, task: Task, splits: dict[str, Split], progress: bool) -> Teacher:
        from bench.distill import Distiller
        from bench.engine import seed_everything, set_threads, train
        from bench.registry import METHODS

        recipe = protocol.teacher
        set_threads(protocol.threads)  # the thread count is part of the recipe: results depend on it
        generator = seed_everything(recipe.seed)
        model = task.build_model(recipe.model, len(splits["train"].classes))  # built under the recipe's seed
        distiller = Distiller(task, model, recipe.model, METHODS.get("baseline")())
        start = time.perf_counter()
        train(distiller, splits["train"], recipe.schedule, protocol.augmentation, generator,
              progress=progress, desc=f"teacher {recipe.model}")
        seconds = time.perf_counter() - start
        distiller.close()
        metrics = task.evaluate(model, splits["test"], recipe.schedule.batch_size)
        weights, meta_path = self.paths(protocol)
        atomic_save(model.state_dict(), weights)
        sha = sha256_file(weights)
        meta = {"sha256": sha, "recipe": protocol.to_dict()["teacher"], "protocol": protocol.key,
                "metrics": metrics, "train_seconds": seconds}
        atomic_write_text(meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return Teacher(model, recipe.model, sha, "zoo", metrics, seconds, str(weights))

    def from_file(self, protocol: Protocol, task: Task, splits: dict[str, Split], path: str,
                  expected_sha256: str | None = None) -> Teacher:
        """A user-given teacher (state dict of the protocol's teacher model)."""
        model = task.build_model(protocol.teacher.model, len(splits["train"].classes))
        sha = load_state_dict_checked(model, Path(path), expected_sha256)
        metrics = task.evaluate(model, splits["test"], protocol.schedule.batch_size)
        return Teacher(model, protocol.teacher.model, sha, "file", metrics, 0.0, str(path))
