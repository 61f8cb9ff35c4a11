"""Per-epoch logs of a run (issue 16 §5): what a long run is doing, without a terminal.

:func:`bench.engine.train` hands an :class:`EpochLog` one :class:`EpochRow` at the end of every epoch:
the stage (``init`` or ``main``), the epoch, the mean of each loss term over the epoch's steps, the
learning rate the epoch ended with, its wall seconds and samples per second, and, when the log was
given a ``validate`` callable, the validation metrics (computed in eval mode with no gradient; their
seconds are the row's ``validation_seconds`` and are not counted as training time).

The runner writes the rows as a CSV next to the run's record (``seed-<n>.epochs.csv``, atomically, once
the record is written) and, when ``echo`` is set (``kdbench run`` with stdout not a terminal), prints a
line per epoch. Logging reads values the step already computed; it changes no number of the run.

With ``kdbench run|suite --tensorboard DIR`` (the optional ``tensorboard`` extra) each row also goes, as it
comes, to TensorBoard event files under ``DIR/<protocol>/<method>/<entry>/seed-<n>`` (:class:`TensorBoardSink`):
``loss/<term>``, ``lr``, ``samples_per_second`` and ``val/<metric>``, one point per epoch, the init stage's
under ``init/``; ``tensorboard --logdir DIR`` shows them while the runs train.
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
    #: also write each row to TensorBoard (None: not)
    tensorboard: TensorBoardSink | None = None

    def add(self, row: EpochRow) -> None:
        self.rows.append(row)
        if self.tensorboard is not None:
            self.tensorboard.add(row)
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

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


class TensorBoardSink:
    """Epoch rows as TensorBoard scalars in ``log_dir`` (the writer is opened at the first row)."""

    def __init__(self, log_dir: Path):
        check_tensorboard()
        self.log_dir = Path(log_dir)
        self._writer = None

    def add(self, row: EpochRow) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir))
        prefix = "" if row.stage == "main" else f"{row.stage}/"
        scalars = {**{f"loss/{k}": v for k, v in row.losses.items()}, "lr": row.lr,
                   "samples_per_second": row.samples_per_second,
                   **{f"val/{k}": v for k, v in row.validation.items() if isinstance(v, float | int)}}
        for tag, value in scalars.items():
            self._writer.add_scalar(prefix + tag, value, global_step=row.epoch)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def check_tensorboard() -> None:
    """Raise :class:`~bench.errors.ConfigError` naming the extra when TensorBoard is not installed."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        from bench.errors import ConfigError

        raise ConfigError("--tensorboard: TensorBoard is not installed; pip install 'kdbench[tensorboard]' "
                          "(the per-epoch CSV next to each record is written without it)")


def csv_path(record_path: Path) -> Path:
    """``seed-0.json`` -> ``seed-0.epochs.csv``, next to it."""
    return record_path.with_name(record_path.stem + ".epochs.csv")


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.6g}"
