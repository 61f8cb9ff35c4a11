"""Result records and the results store.

A record is one JSON document per (protocol, method, seed)::

    {
      "schema": 1,
      "protocol": {"name", "key", "version", "hash", "task", "tier"},
      "method": {"name", "hparams": {...}},
      "seed": 0,
      "status": "verified" | "claimed",
      "metrics": {"top1": 71.2, ...},          # test split, last epoch
      "primary_metric": "top1",
      "teacher": {"model", "sha256", "source", "metrics": {...}} | null,
      "efficiency": {"student_params", "extra_params", ...},
      "cost": {"train_seconds", "teacher_forward_seconds", "teacher_forwards",
               "teacher_output_cache", "peak_memory_mb", ...},
      "provenance": {"commit", "dirty", "packages", "python", "platform",
                     "processor", "threads", "device", "time"}
    }

Numbers are numbers, never formatted strings. The store lays records out as
``<root>/<protocol key>/<method>/seed-<n>.json`` and writes each one
atomically (temporary file in the same folder, then ``os.replace``), so a crash
or Ctrl-C never leaves a partial record and concurrent writers never interleave.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.paths import atomic_write_text

SCHEMA_VERSION = 1
STATUSES = ("verified", "claimed")
REQUIRED_KEYS = ("schema", "protocol", "method", "seed", "status", "metrics", "primary_metric",
                 "efficiency", "cost", "provenance")


def validate_record(record: dict[str, Any], source: str = "<record>") -> dict[str, Any]:
    """Check the shape of a record; raise :class:`DataError` naming ``source`` and the key."""
    for key in REQUIRED_KEYS:
        if key not in record:
            raise DataError(f"{source}: result record lacks key {key!r}")
    if record["schema"] != SCHEMA_VERSION:
        raise DataError(f"{source}: schema {record['schema']!r} is not {SCHEMA_VERSION}")
    if record["status"] not in STATUSES:
        raise DataError(f"{source}: status {record['status']!r} is not one of {STATUSES}")
    for name, value in record["metrics"].items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise DataError(f"{source}: metric {name!r} is {value!r}, not a number")
    if record["primary_metric"] not in record["metrics"]:
        raise DataError(f"{source}: primary metric {record['primary_metric']!r} missing from 'metrics'")
    return record


class ResultsStore:
    """A folder of result records; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, protocol_key: str, method: str, seed: int) -> Path:
        return self.root / protocol_key / method / f"seed-{seed}.json"

    def exists(self, protocol_key: str, method: str, seed: int) -> bool:
        return self.path(protocol_key, method, seed).is_file()

    def write(self, record: dict[str, Any]) -> Path:
        """Write ``record`` atomically and return its path."""
        validate_record(record)
        target = self.path(record["protocol"]["key"], record["method"]["name"], record["seed"])
        atomic_write_text(target, json.dumps(record, indent=2, sort_keys=True) + "\n")
        return target

    def read(self, protocol_key: str, method: str, seed: int) -> dict[str, Any]:
        return load_record(self.path(protocol_key, method, seed))

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record under the root, in a stable order (temporary files skipped)."""
        yield from iter_records(self.root)


def load_record(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    return validate_record(record, str(path))


def iter_records(root: str | os.PathLike) -> Iterator[dict[str, Any]]:
    root = Path(root)
    if not root.exists():
        raise DataError(f"results folder {root} does not exist")
    for path in sorted(root.rglob("*.json")):
        if not path.name.startswith("."):
            yield load_record(path)
