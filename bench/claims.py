"""Published numbers as claims: what a paper reports for a protocol, with its citation.

A full-tier protocol reproduces a published table; the table's figures live in a data file next to the
protocol (``published_*.json``), registered with :func:`register_claims` by the module that defines
the protocols. A claim is never a result record: records come only from runs, the leaderboard reads
claims only to put the paper's figure next to ours (``leaderboard/reproduction.py``).

File format (JSON)::

    {"description": str, "metric": "top1", "reported_as": str,
     "sources": {"<id>": {"citation": str, "url": str, "read_from": str}},
     "tables": [{"title": str,
                 "columns": [{"protocol": "<registered protocol name>", "label": str}, ...],
                 "rows": [{"label": "KD", "source": "<id>", "values": [number or null per column],
                           "role": "teacher" | "student" (optional, default "method"),
                           "method": "<our registered method reproducing it>" (optional),
                           "notes": {"<protocol>": str} (optional)}, ...]}]}

``values`` follow the column order (a row transcribes the paper's row); ``null`` means the source
has no figure for that column (the claim is kept, with its note, and shows as "no figure").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import DataError

ROLES = ("teacher", "student", "method")


@dataclass(frozen=True)
class Claim:
    """One published figure for one protocol."""

    protocol: str  # the registered protocol name (no version: a paper reproduces a track)
    label: str  # the paper's row name, e.g. "KD", "teacher"
    role: str  # "teacher", "student" or "method"
    method: str | None  # our registered method that reproduces the row, if any
    value: float | None  # None: the source has no figure for this protocol
    metric: str
    source: str  # the citation
    url: str = ""
    note: str = ""
    reported_as: str = ""


_FILES: list[Path] = []


def register_claims(path: str | Path) -> None:
    """Make the claims of the file at ``path`` available to :func:`claims_for` (called at import
    by the module that defines the protocols; the file is read when first needed)."""
    path = Path(path)
    if path not in _FILES:
        _FILES.append(path)


def claims_for(protocol_name: str) -> list[Claim]:
    """Every registered claim about ``protocol_name``, in the files' row order (empty if none)."""
    from bench.registry import load_plugins

    load_plugins()
    return [c for path in _FILES for c in load_claims(path) if c.protocol == protocol_name]


def claim_files() -> list[Path]:
    from bench.registry import load_plugins

    load_plugins()
    return list(_FILES)


def load_claims(path: str | Path) -> list[Claim]:
    """Every claim of one file, checked: a malformed file is a :class:`DataError` naming it and the key."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"claims file {path}: {exc}") from None
    try:
        return list(_claims(data, path))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"claims file {path}: malformed ({type(exc).__name__}: {exc}); see bench.claims "
                        "for the format") from None


def _claims(data: dict[str, Any], path: Path):
    sources, metric = data["sources"], data["metric"]
    for t, table in enumerate(data["tables"]):
        columns = [c["protocol"] for c in table["columns"]]
        for r, row in enumerate(table["rows"]):
            where = f"claims file {path}: tables[{t}].rows[{r}] ({row.get('label')!r})"
            if len(row["values"]) != len(columns):
                raise DataError(f"{where} has {len(row['values'])} values for {len(columns)} columns")
            if row["source"] not in sources:
                raise DataError(f"{where}: source {row['source']!r} is not in 'sources' ({', '.join(sources)})")
            role = row.get("role", "method")
            if role not in ROLES:
                raise DataError(f"{where}: role {role!r} is not one of {ROLES}")
            source = sources[row["source"]]
            for protocol, value in zip(columns, row["values"], strict=True):
                yield Claim(protocol, row["label"], role, row.get("method"),
                            None if value is None else float(value), metric, source["citation"],
                            source.get("url", ""), row.get("notes", {}).get(protocol, ""),
                            data.get("reported_as", ""))
