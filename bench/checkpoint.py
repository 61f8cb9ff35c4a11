"""Checkpoints inside a run, and resuming from them (issue 16 §4).

With ``--checkpoint-every N`` the engine saves, after every N-th epoch of a stage (not after the last),
everything the rest of the run depends on: the student, the method's extras, the optimiser and rate
scheduler, the method's own state (:meth:`bench.method.Method.state_dict`: a peer, a discriminator and
their optimisers, a warm-up's step count), the batch-order generator, torch's and Python's global random
states, the step, the seconds trained so far and the per-epoch log. The file is ``seed-<n>.ckpt.pt`` next
to where the record will be, written atomically (:func:`bench.paths.atomic_save`), loaded weights-only,
and deleted once the record is written.

A rerun of the same run (same identity) finds the file and continues from it; on the CPU the final
numbers equal an uninterrupted run's (tests/bench/test_checkpoint.py kills a run and resumes it). A file
of another run's identity, or one that does not load, is reported and ignored.
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.paths import CacheIntegrityWarning, atomic_save


def checkpoint_path(record_path: Path) -> Path:
    """``seed-0.json`` -> ``seed-0.ckpt.pt``, next to it."""
    return record_path.with_name(record_path.stem + ".ckpt.pt")


@dataclass
class Checkpointing:
    """Where a run's checkpoint goes, how often, and the state it resumes from (see the module docstring)."""

    path: Path
    #: epochs between checkpoints; 0 saves none (a state found is still resumed from)
    every: int
    #: the run's identity as canonical JSON: a checkpoint of another run is never resumed
    identity: str
    state: dict[str, Any] | None = None
    #: what the runner adds to every checkpoint (e.g. the finished init stage's cost)
    carry: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path, every: int, identity: dict[str, Any]) -> Checkpointing:
        key = json.dumps(identity, sort_keys=True)
        state = None
        if path.is_file():
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                if state.get("identity") != key:
                    warnings.warn(f"checkpoint {path} is of another run; starting from scratch",
                                  CacheIntegrityWarning, stacklevel=2)
                    state = None
            except Exception as exc:  # noqa: BLE001 - any unreadable file is reported and not used
                warnings.warn(f"checkpoint {path} does not load ({type(exc).__name__}: {exc}); starting from "
                              "scratch", CacheIntegrityWarning, stacklevel=2)
                state = None
        checkpointing = cls(path, every, key, state)
        if state is not None:
            checkpointing.carry = dict(state.get("carry", {}))
        return checkpointing

    @property
    def resumed_stage(self) -> str | None:
        """The stage the found checkpoint was saved in (``"init"`` or ``"main"``), None without one."""
        return None if self.state is None else self.state["stage"]

    def due(self, epoch_done: int, epochs: int) -> bool:
        return self.every > 0 and epoch_done % self.every == 0 and epoch_done < epochs

    def save(self, stage: str, epoch_done: int, step: int, seconds: float, distiller, optimizer, lr_scheduler,
             generator: torch.Generator, log_rows: list[dict[str, Any]], scaler=None) -> None:
        extras = distiller.extras
        atomic_save({
            "identity": self.identity, "stage": stage, "epoch": epoch_done, "step": step, "seconds": seconds,
            "student": distiller.student.state_dict(), "extras": None if extras is None else extras.state_dict(),
            "optimizer": optimizer.state_dict(), "lr_scheduler": lr_scheduler.state_dict(),
            "method": distiller.method.state_dict(), "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(), "log": log_rows,
            "carry": self.carry, "scaler": None if scaler is None else scaler.state_dict(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }, self.path)

    def restore(self, stage: str, distiller, optimizer, lr_scheduler, generator: torch.Generator, scaler=None
                ) -> tuple[int, int, float, list[dict[str, Any]]] | None:
        """Load the found checkpoint of ``stage`` into the run; (epochs done, step, seconds, log rows), or
        None when there is none for this stage."""
        state = self.state
        if state is None or state["stage"] != stage:
            return None
        distiller.student.load_state_dict(state["student"])
        if distiller.extras is not None and state["extras"] is not None:
            distiller.extras.load_state_dict(state["extras"])
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        distiller.method.load_state_dict(state["method"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(_as_python_state(state["python_rng"]))
        if scaler is not None and state.get("scaler") is not None:  # fp16's loss scale and its growth tracker
            scaler.load_state_dict(state["scaler"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.state = None  # resumed once
        return state["epoch"], state["step"], state["seconds"], state["log"]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _as_python_state(value) -> tuple:
    """``random.getstate()`` as saved (lists may come back where tuples went in)."""
    version, internal, gauss = value
    return version, tuple(internal), gauss
