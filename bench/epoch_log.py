"""Per-epoch logs of a run (issue 16 §5): what a long run is doing, without a terminal.

:func:`bench.engine.train` hands an :class:`EpochLog` one :class:`EpochRow` at the end of every epoch:
the stage (``init`` or ``main``), the epoch, the mean of each loss term over the epoch's steps, the
learning rate the epoch ended with, its wall seconds and samples per second, and, when the log was
given a ``validate`` callable, the validation metrics (computed in eval mode with no gradient; their
seconds are the row's ``validation_seconds`` and are not counted as training time).

The runner writes the rows as a CSV next to the run's record (``seed-<n>.epochs.csv``, atomically, once
the record is written) and, when ``echo`` is set (``kdbench run`` with stdout not a terminal), prints a
line per epoch. Logging reads values the step already computed; it changes no number of the run.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.paths import atomic_write_text


@dataclass
class EpochRow:
    """One epoch of one training stage."""

    stage: str
    epoch: int
    epochs: int
    steps: int
    lr: float
    seconds: float
    samples_per_second: float
    losses: dict[str, float]
    validation: dict[str, float] = field(default_factory=dict)
    validation_seconds: float = 0.0


@dataclass
class EpochLog:
    """Collects :class:`EpochRow` s; see the module docstring."""

    #: ``() -> metrics`` on the validation split, called after each epoch (None: no validation column)
    validate: Callable[[], dict[str, float]] | None = None
    #: print a line per epoch to ``stream``
    echo: bool = False
    stream: TextIO | None = None
    label: str = ""
    rows: list[EpochRow] = field(default_factory=list)

    def add(self, row: EpochRow) -> None:
        self.rows.append(row)
        if self.echo:
            losses = ", ".join(f"{k} {v:.4g}" for k, v in row.losses.items())
            val = "".join(f", val {k} {v:.2f}" for k, v in row.validation.items() if isinstance(v, float | int))
            print(f"{self.label}{row.stage} epoch {row.epoch}/{row.epochs}: {losses}; lr {row.lr:.3g}; "
                  f"{row.samples_per_second:.0f} samples/s{val}", file=self.stream or sys.stdout, flush=True)

    def csv_text(self) -> str:
        """The rows as CSV: stage, epoch, steps, lr, seconds, samples_per_second, validation_seconds, then
        ``loss:<term>`` and ``val:<metric>`` columns (sorted; empty where a row has no such value)."""
        losses = sorted({k for row in self.rows for k in row.losses})
        metrics = sorted({k for row in self.rows for k in row.validation})
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["stage", "epoch", "steps", "lr", "seconds", "samples_per_second", "validation_seconds",
                         *(f"loss:{k}" for k in losses), *(f"val:{k}" for k in metrics)])
        for row in self.rows:
            writer.writerow([row.stage, row.epoch, row.steps, _number(row.lr), _number(row.seconds),
                             _number(row.samples_per_second), _number(row.validation_seconds),
                             *(_number(row.losses.get(k)) for k in losses),
                             *(_number(row.validation.get(k)) for k in metrics)])
        return out.getvalue()

    def write_csv(self, path: Path) -> Path:
        atomic_write_text(path, self.csv_text())
        return path


def csv_path(record_path: Path) -> Path:
    """``seed-0.json`` -> ``seed-0.epochs.csv``, next to it."""
    return record_path.with_name(record_path.stem + ".epochs.csv")


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.6g}"
