"""Accuracy-regression check for CI: compare fresh results against reference results.

For every (protocol, method) in the reference and every metric of its records,
the mean over seeds of the current records is compared with the mean over
seeds of the reference records. A row fails when the current mean is lower
than the reference mean by more than the tolerance (only drops fail;
improvements pass), when the method has no current records ("missing"), or
when its current records were produced under a different protocol hash for
the same key ("protocol changed": the numbers are not comparable, and the
reference must be regenerated on purpose). Methods only in the current
results are new and are not checked.

The tolerance is ``max(floor, k * reference std over seeds)``. The seed spread
of the reference measures how much a rerun moves by chance alone, so a drop of
more than ``k = 3`` standard deviations is very unlikely to be noise (and the
current mean, averaged over several seeds, scatters less than one seed does).
The floor, in metric units (e.g. 1 point of top-1), covers the cases where the
spread says nothing: a single reference seed, or seeds that agree exactly
because the runs are deterministic, where a std of zero would otherwise fail
on any last-digit change from a new library or machine.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.errors import DataError
from bench.stats import summarize

STATUSES = ("ok", "regressed", "missing", "protocol changed")


@dataclass(frozen=True)
class RegressionRow:
    """One (protocol, method, metric) comparison; ``current_mean`` is nan when there is none."""

    protocol: str
    method: str
    metric: str
    reference_mean: float
    current_mean: float
    tolerance: float
    status: str  # one of STATUSES

    @property
    def failed(self) -> bool:
        """Whether this row should fail CI (anything but "ok")."""
        return self.status != "ok"


def compare(current: Iterable[dict[str, Any]], reference: Iterable[dict[str, Any]],
            floor: float = 1.0, k: float = 3.0) -> list[RegressionRow]:
    """Compare ``current`` records with ``reference`` records; see the module docstring.

    Records are matched by protocol key and hash and by method name. Rows come
    sorted by protocol and method, primary metric first. Raises
    :class:`DataError` if the reference holds two hashes for one protocol key.
    """
    ref_groups = _group(reference)
    cur_groups = _group(current)
    ref_hashes: dict[str, set[str]] = defaultdict(set)
    for key, protocol_hash, _ in ref_groups:
        ref_hashes[key].add(protocol_hash)
    for key, hashes in ref_hashes.items():
        if len(hashes) > 1:
            raise DataError(f"reference results for protocol {key!r} have {len(hashes)} protocol hashes: "
                            f"{', '.join(sorted(hashes))}")
    rows = []
    for (key, protocol_hash, method), refs in sorted(ref_groups.items()):
        currents = cur_groups.get((key, protocol_hash, method), [])
        other_hash = any(k2 == key and m2 == method for k2, _, m2 in cur_groups)
        for metric in _metrics(refs):
            ref = summarize(r["metrics"][metric] for r in refs if metric in r["metrics"])
            cur = summarize(r["metrics"][metric] for r in currents if metric in r["metrics"])
            tolerance = max(floor, k * ref.std)
            if cur.n == 0:
                status = "protocol changed" if not currents and other_hash else "missing"
            else:
                status = "regressed" if cur.mean < ref.mean - tolerance else "ok"
            rows.append(RegressionRow(key, method, metric, ref.mean, cur.mean, tolerance, status))
    return rows


def _group(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Records by (protocol key, protocol hash, method name)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        protocol = record["protocol"]
        groups[protocol["key"], protocol["hash"], record["method"]["name"]].append(record)
    return groups


def _metrics(records: list[dict[str, Any]]) -> list[str]:
    """Every metric of ``records``: the primary metric first, then the others by name."""
    primary = records[0]["primary_metric"]
    return [primary, *sorted({m for r in records for m in r["metrics"]} - {primary})]


def format_rows(rows: Iterable[RegressionRow]) -> str:
    """A plain-text table of ``rows`` with aligned columns (``-`` for a missing number)."""
    header = ("protocol", "method", "metric", "reference", "current", "tolerance", "status")
    lines = [header] + [
        (r.protocol, r.method, r.metric, _num(r.reference_mean), _num(r.current_mean), _num(r.tolerance), r.status)
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {3, 4, 5}
    text = [
        "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                  for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
        .rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text) + "\n"


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"
