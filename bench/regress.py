"""The CI accuracy gate (``kdbench regress``): fresh records against a committed reference.

Records are matched by (protocol key, method, seed). Every matched pair gives
record checks and value checks:

* **record checks**: the record exists on both sides ("missing" otherwise);
  both were produced under the code's protocol of that key ("protocol
  changed", naming every field of ``protocol.spec`` that differs, e.g.
  ``schedule.lr: 0.05 -> 0.1``: a protocol edited without a version bump);
  the method's resolved hyperparameters are equal ("hparams differ", naming
  them). The identity's hyperparameters (``identity.hparams``) are used when
  the record has them, ``method.hparams`` otherwise.
* **value checks**: one per (protocol, method, seed, metric) in the exact
  mode, one per (protocol, method, metric) over the seeds in the statistical
  mode. A current value that is NaN, infinite or ``null`` where the reference
  is a number fails ("not finite"); a reference ``null`` means the metric does
  not apply to the protocol's data (COCO's ``map_large`` on 64x64 images) and
  the current value must be ``null`` too.

``kdbench regress`` picks the mode by itself (``--mode auto``, the default):
exact when the current records come from the reference's environment (the
:data:`ENVIRONMENT_FIELDS` of their provenance are equal), statistical otherwise,
and it prints which and why; ``--mode exact|stat`` forces one.

**Exact mode** (for CI on the pinned environment). Reruns on one
machine are bit-identical (measured: the whole smoke tier run twice from empty
caches, 302 of 302 values equal), so any change of a value means the code
changed what it computes. A value fails when ``|current - reference| >
EXACT_TOLERANCE`` (absolute, in metric units), which only absorbs
last-digit noise. What a benign rewrite does was measured on the
classification and segmentation smoke tiers (222 values): KD's KL written
with ``F.kl_div`` moves none (its backward is the same ``-target`` as the
explicit formula's); the log-softmax written as ``z - logsumexp(z)`` (same
function, other rounding in the gradient) moves 24 values by up to 1.75
points, because a few epochs amplify last-bit differences. Those moves are as
large as the planted bugs' (a quarter point, one test image of 400, and up),
so no tolerance separates them on values: the exact mode flags every
numerical change, a rewrite that changes rounding is shown to pass
``--mode stat`` (that one does, with no value failing) and lands with a
reviewed ``--update``. The
exact mode holds on the reference's environment only: the committed smoke
reference, made on another VM of the same fleet (same torch, same CPU name,
another kernel build), differed from a rerun of the same code here in 110 of
302 values; :func:`environment_note` names such a difference.

**Statistical mode** (``--mode stat``: another machine, another torch or
BLAS). There a few epochs turn last-digit differences into another
trajectory. Measured on that cross-VM rerun: the per-value differences have a
per-run standard deviation (rms / sqrt 2) of 0.1 to 0.6 times the seed
standard deviation of the reference pooled over the methods of the protocol
(classification top-1 1.18 vs 2.05, segmentation mIoU 0.48 vs 3.66, pose PCK
0.16 vs 2.08). The pooled seed std ``s`` (one per protocol and metric, with
many more degrees of freedom than the 2-seed std of one method, whose
near-zero values caused false alarms before) is therefore a safe upper bound
of the noise, and a mean over ``n`` seeds fails only when it drops more than
``k * s * sqrt(2 / n)`` below the reference mean (the standard error of a
difference of two ``n``-seed means; ``k = 3`` by default). The cross-VM rerun
passes every check. Improvements pass in this mode.

**Which checks can fail.** A value whose reference sits at 0 (the smoke model
learns nothing measurable there, e.g. the IoU of a class it never predicts)
cannot catch a drop; such values, and undefined ones, are counted apart as
"runs only" (they are still compared: a change still fails in the exact
mode). The report ends with the counts.

**Published records** (:func:`check_published`, no training): every record
under ``leaderboard/records`` must carry the hash of the code's protocol of
its key, its metrics must be finite (or undefined), and a default entry must
hold the hyperparameters the code resolves today; records of older protocol
versions are counted apart, not checked.

**Updating the reference** (:func:`update_reference`): the new records are
validated first (the folder exists, every record parses, values are finite,
the code's protocol hash, every protocol x applicable method x seed of the
tier present), copied into a temporary folder beside the reference, and only
then swapped in by renames; nothing is deleted before the new reference is in
place, and a failed validation changes nothing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError, KDBenchError

MODES = ("exact", "stat")
EXACT_TOLERANCE = 1e-6
STAT_K = 3.0
RECORD_CHECK = "*"  # the metric column of a record-level check
#: identity fields compared besides the hyperparameters: who teaches, and on which data
IDENTITY_FIELDS = ("teachers", "data")

Record = dict[str, Any]
RecordKey = tuple[str, str, int]  # protocol key, method, seed


@dataclass(frozen=True)
class Check:
    """One check of the gate; ``seed`` is None for a statistical (over-seeds) value check.

    ``metric`` is :data:`RECORD_CHECK` for a record check (presence, protocol,
    hyperparameters). ``can_fail`` is False for "runs only" values (reference
    at 0 or undefined).
    """

    protocol: str
    method: str
    seed: int | None
    metric: str
    reference: float
    current: float
    tolerance: float
    status: str
    detail: str = ""
    can_fail: bool = True

    @property
    def failed(self) -> bool:
        return self.status != "ok"


# -- reading records ------------------------------------------------------------


def record_hparams(record: Record) -> dict[str, Any]:
    """The method's resolved hyperparameters: ``identity.hparams`` when present, else ``method.hparams``."""
    identity = record.get("identity") or {}
    if "hparams" in identity:
        return identity["hparams"]
    return record["method"].get("hparams", {})


def by_seed(records: Iterable[Record], source: str) -> dict[RecordKey, Record]:
    """Records keyed by (protocol key, method, seed). Where several entries share that key (variants
    with other hyperparameters or teachers), the default entry is the one compared; none or two
    default entries among several are an error naming ``source``."""
    found: dict[RecordKey, list[Record]] = defaultdict(list)
    for record in records:
        found[record["protocol"]["key"], record["method"]["name"], int(record["seed"])].append(record)
    chosen = {}
    for key, group in found.items():
        defaults = [r for r in group if (r.get("identity") or {}).get("default", True)] if len(group) > 1 else group
        if len(defaults) != 1:
            raise DataError(f"{source}: {len(defaults)} default records for protocol {key[0]!r}, method "
                            f"{key[1]!r}, seed {key[2]} (expected 1)")
        chosen[key] = defaults[0]
    return chosen


def _at(spec: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(spec, dict) or part not in spec:
            return "(absent)"
        spec = spec[part]
    return spec


def diff_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"field: old -> new"`` for every field (dotted, nested dicts descended) that differs."""
    from bench.identity import changed_fields, plain

    old, new = plain(old), plain(new)
    return [f"{name}: {_at(old, name)!r} -> {_at(new, name)!r}" for name in changed_fields(old, new)]


def protocol_problem(record: Record) -> str | None:
    """Why ``record`` was not produced under the code's protocol of its key (None if it was).

    Names the changed fields when the record carries ``protocol.spec``.
    """
    from bench.protocol import get_protocol

    info = record["protocol"]
    try:
        protocol = get_protocol(info["name"])
    except KDBenchError:
        return f"protocol {info['name']!r} is not registered any more"
    if protocol.key != info["key"]:
        return None  # another version: not the same key, see check_published
    if protocol.spec_hash == info["hash"]:
        return None
    if "spec" not in info:
        return (f"hash {info['hash'][:12]} != code {protocol.short_hash} (record has no protocol.spec: "
                f"fields unknown)")
    from bench.identity import protocol_spec

    changed = diff_fields(info["spec"], protocol_spec(protocol))
    return "changed without a version bump: " + ("; ".join(changed) or "(spec equal, hash differs)")


def _superseded_hint(record: Record) -> str:
    """``"; the code's protocol is now <key>"`` when the record's key is an older version."""
    from bench.protocol import get_protocol

    try:
        key = get_protocol(record["protocol"]["name"]).key
    except KDBenchError:
        return f"; protocol {record['protocol']['name']!r} is not registered any more"
    return "" if key == record["protocol"]["key"] else f"; the code's protocol is now {key} (update the reference)"


def hparams_problem(reference: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The hyperparameters that differ, with both values (None if none)."""
    changed = diff_fields(reference, current)
    return "; ".join(changed) if changed else None


def identity_problem(reference: Record, current: Record) -> str | None:
    """Teachers or data fingerprint that differ between two records' identities (None if equal or
    if either record has no identity)."""
    ref, cur = reference.get("identity"), current.get("identity")
    if not ref or not cur:
        return None
    changed = [f"{field} {str(ref.get(field))[:40]} -> {str(cur.get(field))[:40]}"
               for field in IDENTITY_FIELDS if ref.get(field) != cur.get(field)]
    return "; ".join(changed) if changed else None


# -- comparing ------------------------------------------------------------------


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _undefined(value: Any) -> bool:
    """``null`` ("not applicable", as records store it) or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _value_check(protocol: str, method: str, seed: int | None, metric: str, ref: Any, cur: Any,
                 tolerance: float, drop_only: bool) -> Check:
    can_fail = _finite(ref) and ref != 0
    shown_ref, shown_cur = (float(v) if _finite(v) else math.nan for v in (ref, cur))
    if _undefined(ref):
        status = "ok" if _undefined(cur) else "changed"
        detail = "" if status == "ok" else f"not applicable in the reference, now {cur!r}"
    elif not _finite(cur):
        status, detail = "not finite", f"{ref!r} -> {'null' if cur is None else repr(cur)}"
    else:
        delta = cur - ref
        status = ("regressed" if -delta > tolerance else "ok") if drop_only else (
            "changed" if abs(delta) > tolerance else "ok")
        detail = f"{ref!r} -> {cur!r}" if status != "ok" else ""
    return Check(protocol, method, seed, metric, shown_ref, shown_cur, tolerance, status, detail, can_fail)


def _mean(values: list[Any]) -> Any:
    """The mean of ``values``; None if all are undefined, NaN if only some are."""
    if all(_undefined(v) for v in values):
        return None
    if any(not _finite(v) for v in values):
        return math.nan
    return sum(values) / len(values)


def _metrics(records: list[Record]) -> list[str]:
    """Every metric of ``records``: the primary metric first, then the others by name."""
    primary = records[0]["primary_metric"]
    return [primary, *sorted({m for r in records for m in r["metrics"]} - {primary})]


def compare(current: Iterable[Record], reference: Iterable[Record], mode: str = "exact",
            tolerance: float = EXACT_TOLERANCE, k: float = STAT_K) -> list[Check]:
    """Every check of ``current`` against ``reference``; see the module docstring.

    Only (protocol, method, seed) of the reference are checked: current records
    the reference lacks are new and pass. Checks come sorted by protocol, method
    and seed, the record checks first, then the primary metric.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    refs, curs = by_seed(reference, "reference"), by_seed(current, "current records")
    checks: list[Check] = []
    matched: dict[tuple[str, str], list[tuple[Record, Record]]] = defaultdict(list)
    for key in sorted(refs):
        ref, cur = refs[key], curs.get(key)
        protocol, method, seed = key
        problems = []
        if cur is None:
            problems.append(("missing", "no current record" + _superseded_hint(ref)))
        for side, record in (("reference", ref), ("current", cur)):
            problem = record and protocol_problem(record)
            if problem:
                problems.append(("protocol changed", f"{side}: {problem}"))
        if cur is not None:
            changed = hparams_problem(record_hparams(ref), record_hparams(cur))
            if changed:
                problems.append(("hparams differ", changed))
            changed = identity_problem(ref, cur)
            if changed:
                problems.append(("identity differs", changed))
        for status, detail in problems or [("ok", "")]:
            checks.append(Check(protocol, method, seed, RECORD_CHECK, math.nan, math.nan, 0.0, status, detail))
        if cur is None:
            continue
        if mode == "exact":
            for metric in _metrics([ref]):
                checks.append(_value_check(protocol, method, seed, metric, ref["metrics"][metric],
                                           cur["metrics"].get(metric, math.nan), tolerance, drop_only=False))
        else:
            matched[protocol, method].append((ref, cur))
    if mode == "stat":
        checks.extend(_stat_checks(matched, refs.values(), k))
    return sorted(checks, key=lambda c: (c.protocol, c.method, -1 if c.seed is None else c.seed,
                                         c.metric != RECORD_CHECK))


def pooled_std(records: Iterable[Record], protocol: str, metric: str) -> float:
    """The seed standard deviation of ``metric`` pooled over the methods of ``protocol``
    (sum of squared deviations from each method's mean over the pooled degrees of freedom)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in records:
        value = r["metrics"].get(metric, math.nan)
        if r["protocol"]["key"] == protocol and _finite(value):
            groups[r["method"]["name"]].append(float(value))
    squares = sum(sum((v - sum(vs) / len(vs)) ** 2 for v in vs) for vs in groups.values())
    dof = sum(len(vs) - 1 for vs in groups.values())
    return math.sqrt(squares / dof) if dof else math.nan


def _stat_checks(matched: dict[tuple[str, str], list[tuple[Record, Record]]], reference: Iterable[Record],
                 k: float) -> list[Check]:
    reference = list(reference)
    noise: dict[tuple[str, str], float] = {}
    checks = []
    for (protocol, method), pairs in sorted(matched.items()):
        for metric in _metrics([pairs[0][0]]):
            refs = [r["metrics"][metric] for r, _ in pairs]
            curs = [c["metrics"].get(metric, math.nan) for _, c in pairs]
            if (protocol, metric) not in noise:
                noise[protocol, metric] = pooled_std(reference, protocol, metric)
            s = noise[protocol, metric]
            tolerance = k * s * math.sqrt(2 / len(pairs)) if math.isfinite(s) else 0.0
            checks.append(_value_check(protocol, method, None, metric, _mean(refs), _mean(curs), tolerance,
                                       drop_only=True))
    return checks


# -- published records ----------------------------------------------------------


def check_published(records: Iterable[Record]) -> tuple[list[Check], int]:
    """Record checks of published records against the code, with no training; also the number of
    records of superseded protocol versions (not checked). See the module docstring."""
    from bench.protocol import get_protocol
    from bench.runner import build_method

    checks, superseded = [], 0
    for record in records:
        info, method, seed = record["protocol"], record["method"]["name"], int(record["seed"])
        problems = []
        try:
            protocol = get_protocol(info["name"])
        except KDBenchError:
            protocol = None
        if protocol is not None and protocol.key != info["key"]:
            superseded += 1
            continue
        problem = protocol_problem(record)
        if problem:
            problems.append(("protocol changed", problem))
        bad = {m: v for m, v in record["metrics"].items()
               if not _finite(v) and (v is not None or m == record["primary_metric"])}
        if bad:
            problems.append(("not finite", ", ".join(f"{m}={v!r}" for m, v in sorted(bad.items()))))
        if protocol is not None and not problem and (record.get("identity") or {}).get("default", True):
            try:
                defaults = build_method(protocol, method).hparams
            except KDBenchError as exc:
                problems.append(("hparams differ", f"method cannot be built: {exc}"))
            else:
                changed = hparams_problem(record_hparams(record), defaults)
                if changed:
                    problems.append(("hparams differ", f"code defaults changed: {changed}"))
        for status, detail in problems or [("ok", "")]:
            checks.append(Check(info["key"], method, seed, RECORD_CHECK, math.nan, math.nan, 0.0, status, detail))
    return sorted(checks, key=lambda c: (c.protocol, c.method, c.seed)), superseded


# -- estimates, reports ---------------------------------------------------------


def estimate_seconds(records: Iterable[Record]) -> float:
    """Training seconds (one core) to rerun ``records``: every student run plus each teacher,
    assistant or ensemble member once (they are trained once per protocol and shared)."""
    total, stages = 0.0, {}
    for record in records:
        cost = record.get("cost", {})
        total += cost.get("train_seconds", 0.0)
        for stage in cost.get("stages", []):
            if stage.get("stage") != "student":
                key = (record["protocol"]["key"], json.dumps(stage.get("model")), stage.get("stage"),
                       json.dumps(stage.get("seed")))
                stages[key] = max(stages.get(key, 0.0), stage.get("train_seconds", 0.0))
    return total + sum(stages.values())


def summary(checks: list[Check]) -> str:
    """The closing lines: how many checks failed, and how many could have."""
    records = [c for c in checks if c.metric == RECORD_CHECK]
    values = [c for c in checks if c.metric != RECORD_CHECK]
    able = sum(c.can_fail for c in values)
    failed = [c for c in checks if c.failed]
    lines = [f"{len(records)} record checks (presence, protocol, hyperparameters); {len(values)} value checks, "
             f"{able} able to fail on a drop, {len(values) - able} runs only (reference at 0 or undefined; "
             f"still compared)"]
    lines.append(f"{len(failed)} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks passed")
    return "\n".join(lines)


def format_checks(checks: Iterable[Check], failed_only: bool = False) -> str:
    """A plain-text table of ``checks`` (``-`` for a missing number); ``failed_only`` keeps failures."""
    header = ("protocol", "method", "seed", "metric", "reference", "current", "tolerance", "status", "detail")
    lines = [header] + [
        (c.protocol, c.method, "mean" if c.seed is None else str(c.seed), c.metric, _num(c.reference),
         _num(c.current), _num(c.tolerance) if c.metric != RECORD_CHECK else "-",
         ("runs only" if not c.can_fail and c.status == "ok" else c.status), c.detail)
        for c in checks if c.failed or not failed_only
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = {4, 5, 6}
    text = [
        "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                  for i, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text) + "\n"


def _num(value: float) -> str:
    if not isinstance(value, (int, float)) or math.isnan(value):
        return "-"
    if math.isinf(value):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.1e}"


ENVIRONMENT_FIELDS = ("packages", "python", "processor", "platform", "device")


def environment_note(current: Iterable[Record], reference: Iterable[Record]) -> str:
    """A hint when the two sets of records come from different environments ("" if the same).

    The exact mode assumes one: the committed smoke reference produced on another VM of the same
    fleet (same torch, same CPU name, another kernel build) differed from a rerun here in 110 of
    302 values, by up to 10 points on one segmentation class IoU.
    """
    def seen(records: Iterable[Record]) -> dict[str, set[str]]:
        fields: dict[str, set[str]] = defaultdict(set)
        for r in records:
            for field in ENVIRONMENT_FIELDS:
                fields[field].add(json.dumps(r.get("provenance", {}).get(field), sort_keys=True))
        return fields

    cur, ref = seen(current), seen(reference)
    changed = [f"{field} {' / '.join(sorted(ref[field]))} -> {' / '.join(sorted(cur[field]))}"
               for field in ENVIRONMENT_FIELDS if cur[field] != ref[field]]
    if not changed:
        return ""
    return ("note: the reference comes from another environment (" + "; ".join(changed) + "); the exact mode "
            "holds on the reference's environment only: compare with --mode stat, or regenerate the reference "
            "here")


# -- updating the reference -----------------------------------------------------


def validate_update(records_root: Path, tier: str) -> list[Record]:
    """The records of ``records_root`` if they can replace the reference of ``tier``; else a
    :class:`DataError` naming every problem. Nothing is written."""
    from bench.protocol import protocols_of_tier
    from bench.results import iter_records
    from bench.suite import applicable_methods

    if not records_root.is_dir():
        raise DataError(f"--records {records_root} is not a folder; the reference is unchanged")
    records = list(iter_records(records_root))
    if not records:
        raise DataError(f"--records {records_root} holds no result record; the reference is unchanged")
    problems = []
    keyed = by_seed(records, str(records_root))
    for record in records:
        where = f"{record['protocol']['key']} {record['method']['name']} seed {record['seed']}"
        problem = protocol_problem(record)
        if problem:
            problems.append(f"{where}: {problem}")
        for metric, value in record["metrics"].items():
            # null is "not applicable": accepted where it is structural (every record of the protocol)
            structural = value is None and metric != record["primary_metric"] and all(
                r["metrics"].get(metric) is None for r in records
                if r["protocol"]["key"] == record["protocol"]["key"])
            if not _finite(value) and not structural:
                problems.append(f"{where}: metric {metric} is {'null' if value is None else repr(value)}")
    for protocol in protocols_of_tier(tier):
        for method in applicable_methods(protocol):
            for seed in protocol.seeds:
                if (protocol.key, method, seed) not in keyed:
                    problems.append(f"{protocol.key} {method} seed {seed}: no record")
    if problems:
        raise DataError(f"--records {records_root} cannot replace the reference ({len(problems)} problems; the "
                        "reference is unchanged):\n  " + "\n  ".join(problems))
    return records


def update_reference(records_root: str | os.PathLike, reference: str | os.PathLike, tier: str) -> int:
    """Replace ``reference`` with the records of ``records_root`` after :func:`validate_update`:
    copy into a temporary folder beside it, then swap by renames (the old one is removed last).
    Returns the number of records copied."""
    records_root, reference = Path(records_root), Path(reference)
    validate_update(records_root, tier)
    reference.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{reference.name}-", dir=reference.parent))
    try:
        copied = 0
        for path in sorted(records_root.rglob("seed-*.json")):
            relative = path.relative_to(records_root)
            if any(part.startswith(".") or part == "leaderboard" for part in relative.parts):
                continue
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, staging / relative)
            copied += 1
        old = None
        if reference.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{reference.name}-", dir=reference.parent))
            os.rename(reference, old / reference.name)
        try:
            os.rename(staging, reference)
        except BaseException:
            if old is not None:  # put the old reference back
                os.rename(old / reference.name, reference)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return copied
