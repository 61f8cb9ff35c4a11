"""Result records and the results store.

A record (schema 2) is one JSON document per run::

    {
      "schema": 2,
      "protocol": {"name", "key", "version", "hash", "task", "tier", "spec": {...}},
      "method": {"name", "hparams": {...}},
      "identity": {"protocol_hash", "method", "hparams", "teachers", "data", "seed",
                   "entry", "default", "label"},             # bench.identity
      "seed": 0,
      "status": "claimed" | "verified",                      # derived on load, never trusted
      "metrics": {"top1": 71.2, "map_large": null, ...},     # test split, last epoch
      "primary_metric": "top1",
      "teacher": {"model", "sha256", "source", "metrics": {...}} | null,
      "efficiency": {...}, "cost": {...}, "provenance": {...},
      "digest": "<sha256>"
    }

Numbers are numbers, never formatted strings, and always finite: a metric that
does not apply (COCO's AP of a size range without ground truth, the mIoU of a
split without labelled pixels) is ``null`` ("not applicable"), never NaN;
:func:`json_ready` turns the NaN a metric returns into ``null`` before a record
is written, and summaries skip ``null`` (:func:`metric_values`). NaN or
Infinity anywhere in a record is refused, naming the key. The primary metric
must be a finite number.

``digest`` is the sha256 of the record's canonical JSON without ``digest`` and
``status``; :func:`load_record` recomputes it and refuses an edited record.
``status`` is ``"verified"`` only when a sibling ``seed-<n>.verified.json``
(written by ``kdbench verify-record`` after a rerun reproduced the metrics)
names the record's digest; otherwise ``"claimed"``, whatever the file says.

The store lays records out as ``<root>/<protocol key>/<method>/<entry[:12]>/seed-<n>.json``
and writes each one atomically (temporary file in the same folder, then
``os.replace``), so a crash or Ctrl-C never leaves a partial record and
concurrent writers never interleave. Schema-1 records (identity by names only)
are refused: rerun them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.identity import json_ready, sha256_json  # noqa: F401 - json_ready is part of this API
from bench.paths import atomic_write_text

SCHEMA_VERSION = 2
STATUSES = ("verified", "claimed")
REQUIRED_KEYS = ("schema", "protocol", "method", "identity", "seed", "metrics", "primary_metric",
                 "efficiency", "cost", "provenance")
IDENTITY_KEYS = ("protocol_hash", "method", "hparams", "teachers", "data", "seed", "entry", "default", "label")
VERIFIED_SUFFIX = ".verified.json"


def _check_finite(value: Any, where: str, source: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"{source}: {where} is {value!r}; records hold finite numbers only "
                        "(a metric that does not apply is null)")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{where}.{k}" if where else str(k), source)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{where}[{i}]", source)


def record_digest(record: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``record`` without ``digest`` and ``status``."""
    return sha256_json({k: v for k, v in record.items() if k not in ("digest", "status")})


def validate_record(record: dict[str, Any], source: str = "<record>") -> dict[str, Any]:
    """Check the shape of a record; raise :class:`DataError` naming ``source`` and the key."""
    if record.get("schema") == 1:
        raise DataError(f"{source}: schema-1 record (identified by protocol, method and seed only; issue 12); "
                        "it is no longer read: rerun it with `kdbench run`/`kdbench suite` (published records: "
                        "republish with `kdbench suite --publish`)")
    for key in REQUIRED_KEYS:
        if key not in record:
            raise DataError(f"{source}: result record lacks key {key!r}")
    if record["schema"] != SCHEMA_VERSION:
        raise DataError(f"{source}: schema {record['schema']!r} is not {SCHEMA_VERSION}")
    if record.get("status", "claimed") not in STATUSES:
        raise DataError(f"{source}: status {record['status']!r} is not one of {STATUSES}")
    for key in IDENTITY_KEYS:
        if key not in record["identity"]:
            raise DataError(f"{source}: identity lacks key {key!r}")
    for name, value in record["metrics"].items():
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise DataError(f"{source}: metric {name!r} is {value!r}, not a number")
    _check_finite(record, "", source)
    primary = record["primary_metric"]
    if primary not in record["metrics"]:
        raise DataError(f"{source}: primary metric {primary!r} missing from 'metrics'")
    if record["metrics"][primary] is None:
        raise DataError(f"{source}: primary metric {primary!r} is null; the primary metric must be a number")
    return record


def metric_values(records: Iterable[dict[str, Any]], metric: str) -> list[float]:
    """The values of ``metric`` over ``records``, skipping records without it and ``null`` (not applicable)."""
    return [r["metrics"][metric] for r in records if r["metrics"].get(metric) is not None]


def verified_path(path: str | os.PathLike) -> Path:
    """``seed-<n>.json`` -> ``seed-<n>.verified.json``, the proof written by ``kdbench verify-record``."""
    path = Path(path)
    return path.with_name(path.stem + VERIFIED_SUFFIX)


def is_record_file(path: Path) -> bool:
    return path.name.startswith("seed-") and path.suffix == ".json" and not path.name.endswith(VERIFIED_SUFFIX)


class ResultsStore:
    """A folder of result records; see the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, protocol_key: str, identity: dict[str, Any]) -> Path:
        """Where the record of ``identity`` (a :func:`bench.identity.make_identity` block) lives."""
        return (self.root / protocol_key / identity["method"] / identity["entry"][:12]
                / f"seed-{identity['seed']}.json")

    def exists(self, protocol_key: str, identity: dict[str, Any]) -> bool:
        """True when a record of exactly ``identity`` is stored (the "already done" test).

        A stored file is read, so an edited or corrupt record raises :class:`DataError`
        naming it rather than counting as done.
        """
        path = self.path(protocol_key, identity)
        return path.is_file() and load_record(path)["identity"] == identity

    def write(self, record: dict[str, Any]) -> Path:
        """Write ``record`` atomically (status ``claimed``, its digest set) and return its path."""
        record["status"] = "claimed"
        record.pop("digest", None)
        validate_record(record)
        record["digest"] = record_digest(record)
        target = self.path(record["protocol"]["key"], record["identity"])
        atomic_write_text(target, json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
        return target

    def read(self, protocol_key: str, identity: dict[str, Any]) -> dict[str, Any]:
        return load_record(self.path(protocol_key, identity))

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record under the root, in a stable order (temporary files skipped)."""
        yield from iter_records(self.root)


def load_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read, validate and check the digest of the record at ``path``; derive its ``status``."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}: not a result record (a JSON object)")
    validate_record(record, str(path))
    if record.get("digest") != record_digest(record):
        raise DataError(f"{path}: digest does not match the content; the record was edited or tampered with "
                        "(rerun it, or delete it)")
    record["status"] = "verified" if _proof_matches(path, record["digest"]) else "claimed"
    return record


def _proof_matches(path: Path, digest: str) -> bool:
    proof = verified_path(path)
    if not proof.is_file():
        return False
    try:
        return json.loads(proof.read_text()).get("digest") == digest
    except (json.JSONDecodeError, AttributeError, OSError):
        return False


def iter_records(root: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Every record file (``seed-<n>.json``) below ``root``, sorted by path; temporary files
    (``.tmp-*``), verification proofs and other JSON files (tables, manifests) are skipped."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"results folder {root} does not exist")
    for path in sorted(root.rglob("seed-*.json")):
        if is_record_file(path):
            yield load_record(path)
