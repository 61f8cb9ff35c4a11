"""Build leaderboard tables from result records and render them as Markdown and CSV.

One table per protocol key: records of different keys (versions) or different
protocol hashes never share a table, and a key seen with two hashes is an
error, since its numbers would not be comparable. A table has one row per
leaderboard *entry* (``identity.entry``: the method with its resolved
hyperparameters, teachers and data; records without an identity fall back to
the method name), so a non-default variant (other hyperparameters, a teacher
file) is a row of its own, labelled with its settings. Every metric is
summarized over the entry's seeds (:mod:`bench.stats`).

Each row's primary metric is compared with the default ``baseline`` entry and,
where the table has one, with the default single-teacher ``kd`` entry, paired by
seed. All comparisons of a table are one family: the table states how many
tests it makes (``m``), and each comparison shows its nominal 95% CI next to the
Holm-adjusted one (:func:`bench.stats.holm`) and a verdict read from the
adjusted interval only: "separated (+)", "separated (−)" or "not separated
(power: about N points)", N being the difference the comparison would detect
with 80% power at its adjusted level.

Numbers stay numbers until rendering: :func:`render_markdown` formats them for
people, :func:`render_csv` writes them raw for machines (a blank cell means
"not available"). :func:`write_leaderboard` writes through
:mod:`leaderboard.manifest`, so it replaces and removes only files it wrote.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.results import iter_records
from bench.stats import ALPHA, POWER, Comparison, Summary, holm, paired_difference, summarize
from leaderboard.manifest import check_targets, write_outputs

BASELINE = "baseline"  # the method name of the student trained alone
SINGLE_TEACHER_KD = "kd"  # the reference of the chain and ensemble methods (Δ vs kd column)
STAGES = ("teacher", "assistant", "member", "init", "student")  # training stages, in the order they run
HASH_PREFIX = 12  # characters of the protocol hash shown in headings
WRITER = "leaderboard"  # the name write_leaderboard's files are listed under in the output folder's manifest
README = "README.md"
REPRODUCTION_SUFFIX = "-reproduction.csv"  # a full protocol's table next to the paper's (leaderboard.reproduction)


@dataclass(frozen=True)
class Teacher:
    """A teacher seen in a table's records, with its value of the primary metric."""

    model: str
    sha256: str | None
    metric: float | None
    gmacs: float | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class Row:
    """One leaderboard entry of one table; every summary is over that entry's seeds."""

    method: str
    status: str  # "verified" if every record is verified, else "claimed"
    n: int  # number of seeds (records)
    metrics: dict[str, Summary]
    diff: Summary | None  # primary metric minus baseline, paired by seed; None for the baseline or without one
    student_params: int | None
    extra_params: int | None
    train_seconds: float | None  # mean over seeds of cost.train_seconds
    gmacs: float | None = None  # of the student's forward pass at batch 1
    latency_ms: float | None = None  # batch-1 median, mean over the records (machines may differ)
    throughput_per_s: float | None = None  # images/s at the protocol's batch size, mean over the records
    teachers: str = ""  # who taught: "-", a teacher, a chain "t -> a", or an ensemble "t1 + t2 + t3"
    diff_kd: Summary | None = None  # primary metric minus single-teacher kd, paired by seed
    #: mean training seconds per stage (teacher, assistant, member = all ensemble members, student)
    stage_seconds: dict[str, float] | None = None
    entry: str = ""  # identity.entry (the method name for records without an identity)
    default: bool = True  # identity.default: the protocol's hyperparameters and suite-trained teachers
    label: str = ""  # identity.label: the settings of a non-default variant, "" for the default
    verified: int = 0  # number of the entry's records whose status is "verified"
    vs_baseline: Comparison | None = None  # diff after Holm's adjustment over the table's comparisons
    vs_kd: Comparison | None = None  # diff_kd after the same adjustment

    @property
    def total_train_seconds(self) -> float | None:
        """The full cost of the entry: every stage's training, the teachers' included."""
        return sum(self.stage_seconds.values()) if self.stage_seconds else None

    @property
    def name(self) -> str:
        """``kd`` for the default entry, ``kd [T=2, alpha=0.5]`` for a variant."""
        return self.method if self.default or not self.label else f"{self.method} [{self.label}]"

    @property
    def status_text(self) -> str:
        """``verified``, ``claimed``, or ``claimed (2 of 3 seeds verified)``."""
        if self.status == "verified" or not self.verified:
            return self.status
        return f"claimed ({self.verified} of {self.n} seeds verified)"


@dataclass(frozen=True)
class Ensemble:
    """A teacher ensemble seen in a table's records, with its own value of the primary metric."""

    members: str
    metric: float | None


@dataclass(frozen=True)
class Table:
    """All results of one protocol (key and hash), rows sorted by the primary metric, best first
    (rows whose primary metric is not finite last)."""

    protocol_key: str
    protocol_hash: str
    tier: str | None
    primary_metric: str
    metrics: tuple[str, ...]  # primary metric first, then the others by name
    teachers: tuple[Teacher, ...]
    rows: tuple[Row, ...]
    ensembles: tuple[Ensemble, ...] = ()
    comparisons: int = 0  # m: the paired t tests of this table, the family Holm adjusts over


def build_tables(records: Iterable[dict[str, Any]]) -> list[Table]:
    """Group ``records`` by protocol key and build one :class:`Table` per key, ordered by key.

    Raises :class:`DataError` if one key has records with two protocol hashes
    (or two primary metrics), if an entry has two records for one seed, or if
    a reference method (``baseline``, ``kd``) has two default entries.
    """
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_key[record["protocol"]["key"]].append(record)
    return [_build_table(key, by_key[key]) for key in sorted(by_key)]


def entry_of(record: dict[str, Any]) -> tuple[str, bool, str]:
    """``(entry, default, label)`` of a record: its identity, or (method name, True, "") without one."""
    identity = record.get("identity")
    if not identity:
        return record["method"]["name"], True, ""
    return identity["entry"], bool(identity["default"]), identity.get("label", "")


def _build_table(key: str, records: list[dict[str, Any]]) -> Table:
    protocol_hash = _single((r["protocol"]["hash"] for r in records), f"protocol {key!r}: protocol hashes")
    primary = _single((r["primary_metric"] for r in records), f"protocol {key!r}: primary metrics")
    by_entry: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for record in sorted(records, key=lambda r: (r["method"]["name"], entry_of(r)[0], r["seed"])):
        entry, seed = entry_of(record)[0], record["seed"]
        if seed in by_entry[entry]:
            raise DataError(f"protocol {key!r}: method {record['method']['name']!r} (entry {entry[:12]}) "
                            f"has two records for seed {seed}")
        by_entry[entry][seed] = record
    metrics = (primary, *sorted({m for r in records for m in r["metrics"]} - {primary}))
    baseline = _reference(key, by_entry, BASELINE, primary)
    kd = _reference(key, by_entry, SINGLE_TEACHER_KD, primary)
    rows = [_build_row(seeds, metrics, baseline, kd, f"protocol {key!r}, entry {entry[:12]}")
            for entry, seeds in by_entry.items()]
    rows, m = _adjust(rows)
    rows.sort(key=lambda row: (*_rank(row.metrics[primary].mean), row.name))
    return Table(key, protocol_hash, records[0]["protocol"].get("tier"), primary, metrics,
                 _teachers(by_entry.values(), primary), tuple(rows), _ensembles(records, primary), m)


def _rank(mean: float) -> tuple[bool, float]:
    """Sort key: finite means best first, then the non-finite ones."""
    return (False, -mean) if math.isfinite(mean) else (True, 0.0)


def _reference(key: str, by_entry: dict[str, dict[int, dict[str, Any]]], method: str,
               metric: str) -> tuple[str, dict[int, float]] | None:
    """``(entry, metric by seed)`` of the default entry of ``method``, the one every row is compared with."""
    entries = [entry for entry, by_seed in by_entry.items()
               if _first(by_seed)["method"]["name"] == method and entry_of(_first(by_seed))[1]]
    if len(entries) > 1:
        raise DataError(f"protocol {key!r}: {len(entries)} default entries of {method!r} "
                        f"({', '.join(e[:12] for e in entries)}), e.g. runs on different data; "
                        "render their results separately")
    return (entries[0], _metric_by_seed(by_entry[entries[0]], metric)) if entries else None


def _first(by_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return next(iter(by_seed.values()))


def _adjust(rows: list[Row]) -> tuple[list[Row], int]:
    """Holm's adjustment over every comparison of the table (vs baseline and vs kd): one family."""
    family = {(i, field): getattr(row, field) for i, row in enumerate(rows) for field in ("diff", "diff_kd")
              if getattr(row, field) is not None}
    adjusted = holm(family)
    rows = [replace(row, vs_baseline=adjusted.get((i, "diff")), vs_kd=adjusted.get((i, "diff_kd")))
            for i, row in enumerate(rows)]
    return rows, next(iter(adjusted.values())).m if adjusted else 0


def _build_row(by_seed: dict[int, dict[str, Any]], metrics: tuple[str, ...],
               baseline: tuple[str, dict[int, float]] | None, kd: tuple[str, dict[int, float]] | None,
               where: str) -> Row:
    records = list(by_seed.values())
    method = records[0]["method"]["name"]
    entry, default, label = entry_of(records[0])
    summaries = {m: summarize(_values(records, m)) for m in metrics}
    mine = _metric_by_seed(by_seed, metrics[0])
    diff = paired_difference(mine, baseline[1]) if baseline is not None and entry != baseline[0] else None
    diff_kd = None
    if kd is not None and entry != kd[0] and (baseline is None or entry != baseline[0]):
        diff_kd = paired_difference(mine, kd[1])
    times = [r["cost"]["train_seconds"] for r in records if r["cost"].get("train_seconds") is not None]
    efficiency = [r["efficiency"] for r in records]
    verified = sum(r.get("status") == "verified" for r in records)  # a record without a status is claimed
    return Row(
        method=method,
        status="verified" if verified == len(records) else "claimed",
        n=len(records),
        metrics=summaries,
        diff=diff,
        student_params=_single((r["efficiency"].get("student_params") for r in records), f"{where}: student_params"),
        extra_params=_single((r["efficiency"].get("extra_params") for r in records), f"{where}: extra_params"),
        train_seconds=summarize(times).mean if times else None,
        gmacs=_single((e.get("gmacs") for e in efficiency), f"{where}: gmacs"),
        latency_ms=_mean_of(e.get("latency_ms") for e in efficiency),
        throughput_per_s=_mean_of(e.get("throughput_per_s") for e in efficiency),
        teachers=_single((teachers_label(r) for r in records), f"{where}: teachers"),
        diff_kd=diff_kd,
        stage_seconds=_stage_seconds(records),
        entry=entry, default=default, label=label, verified=verified,
    )


def _values(records: Iterable[dict[str, Any]], metric: str) -> list[float]:
    """The values of ``metric``, skipping records without it and ``null`` ("not applicable")."""
    return [r["metrics"][metric] for r in records if r["metrics"].get(metric) is not None]


def teaching_stages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's teachers in order, each with its ``role``; records written before teaching
    blocks existed (one teacher or none) are read from their ``teacher`` block."""
    teaching = record.get("teaching")
    if teaching is not None:
        return teaching["stages"]
    return [{"role": "teacher", **record["teacher"]}] if record.get("teacher") else []


def teachers_label(record: dict[str, Any]) -> str:
    """``-`` (no teacher), ``t`` (one), ``t → a`` (a chain), or ``t1 + t2 + t3`` (an ensemble)."""
    stages = teaching_stages(record)
    if not stages:
        return "-"
    names = [s["model"] + (f" (seed {s['seed']})" if s.get("seed") else "") for s in stages]
    kind = (record.get("teaching") or {}).get("kind", "single")
    return " + ".join(names) if kind == "ensemble" else " → ".join(names)


def _stage_seconds(records: list[dict[str, Any]]) -> dict[str, float] | None:
    """Mean over records of the seconds spent training each stage (ensemble members summed)."""
    per_record = []
    for r in records:
        stages = r["cost"].get("stages")
        if stages is None:  # older records: the teacher block and the student's own time
            stages = [{"stage": "teacher", "train_seconds": s.get("train_seconds")} for s in teaching_stages(r)]
            stages.append({"stage": "student", "train_seconds": r["cost"].get("train_seconds")})
        totals: dict[str, float] = {}
        for stage in stages:
            if stage.get("train_seconds") is None:
                return None
            totals[stage["stage"]] = totals.get(stage["stage"], 0.0) + stage["train_seconds"]
        per_record.append(totals)
    if not per_record:
        return None
    return {stage: summarize(t.get(stage, 0.0) for t in per_record).mean
            for stage in STAGES if any(stage in t for t in per_record)}


def _ensembles(records: list[dict[str, Any]], primary: str) -> tuple[Ensemble, ...]:
    seen: dict[str, Ensemble] = {}
    for r in records:
        teaching = r.get("teaching") or {}
        if teaching.get("kind") == "ensemble":
            label = teachers_label(r)
            seen.setdefault(label, Ensemble(label, teaching.get("ensemble_metrics", {}).get(primary)))
    return tuple(seen.values())


def _mean_of(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return summarize(present).mean if present else None


def _metric_by_seed(by_seed: dict[int, dict[str, Any]], metric: str) -> dict[int, float]:
    return {seed: r["metrics"][metric] for seed, r in by_seed.items() if r["metrics"].get(metric) is not None}


def _teachers(methods: Iterable[dict[int, dict[str, Any]]], primary: str) -> tuple[Teacher, ...]:
    """The distinct teachers (by model and sha256) of a table's records, in first-seen order."""
    seen: dict[tuple[str, str | None], Teacher] = {}
    for by_seed in methods:
        for record in by_seed.values():
            teacher = record.get("teacher")
            if teacher:
                ident = (teacher["model"], teacher.get("sha256"))
                efficiency = teacher.get("efficiency") or {}
                seen.setdefault(ident, Teacher(*ident, teacher.get("metrics", {}).get(primary),
                                               efficiency.get("gmacs"), efficiency.get("latency_ms")))
    return tuple(seen.values())


def _single(values: Iterable[Hashable], what: str) -> Any:
    """The one value all records agree on; :class:`DataError` naming ``what`` if they do not."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) > 1:
        raise DataError(f"{what} differ across records: {', '.join(map(str, distinct))}; "
                        "results of different specifications cannot share a table")
    return distinct[0] if distinct else None


# ---------------------------------------------------------------- rendering

INTRO = f"""# KDBench leaderboard

Metrics are mean ± sample std over seeds (number of seeds); one seed has no spread and shows "± –".
Each protocol's table is followed by its comparisons: the primary metric of every entry minus that of
the default `{BASELINE}` entry (and of single-teacher `{SINGLE_TEACHER_KD}` where the table has it), paired by
seed. All comparisons of a table are one family of m paired t tests: each shows its nominal
{1 - ALPHA:.0%} Student-t CI next to the Holm-adjusted CI (family-wise {1 - ALPHA:.0%}), and the verdict reads
the adjusted interval only: "separated (+)" or "separated (−)" when it excludes zero, else "not
separated (power: about N points)", N being the true difference that comparison would detect with
{POWER:.0%} power at its adjusted level. Status: "verified" rows were rerun by `kdbench verify-record` and
reproduced; "claimed" rows were not. An entry run with other hyperparameters or teachers than the
protocol's is a row of its own, labelled [its settings].
"""


def render_markdown(tables: Iterable[Table]) -> str:
    """The whole leaderboard as GitHub-flavoured Markdown: one section per protocol."""
    sections = [_markdown_section(table) for table in tables]
    return "\n".join([INTRO, *sections]) if sections else INTRO + "\nNo results yet.\n"


def render_sections(tables: Iterable[Table]) -> str:
    """The tables' sections alone, without the leaderboard's introduction (the suite prints each
    protocol's section as soon as its runs are done)."""
    return "\n".join(_markdown_section(table) for table in tables)


def _markdown_section(table: Table) -> str:
    primary = table.primary_metric
    teachers = ", ".join(_teacher_text(t, primary) for t in table.teachers) or "none"
    header = ["Method", "Teachers", "Status", "Seeds", f"{primary} (primary)", *table.metrics[1:],
              "Student params", "Extra params", "GMACs", "Latency (ms, batch 1)", "Throughput (img/s)",
              "Student train (s)", "Total train, all stages (s)"]
    lines = [
        f"## {table.protocol_key}",
        "",
        f"Protocol hash `{table.protocol_hash[:HASH_PREFIX]}` · tier {table.tier or '?'} · teacher {teachers}",
    ]
    for ensemble in table.ensembles:
        metric = "" if ensemble.metric is None else f" ({primary} {ensemble.metric:.2f})"
        lines.append(f"Ensemble reference: {ensemble.members}{metric}")
    lines += ["", _markdown_line(header), _markdown_line([":---"] * 3 + ["---:"] * (len(header) - 3))]
    for row in table.rows:
        lines.append(_markdown_line([
            row.name, row.teachers, row.status_text, str(row.n), format_summary(row.metrics[primary]),
            *(format_mean(row.metrics[m]) for m in table.metrics[1:]),
            _fmt(row.student_params, ",d"), _fmt(row.extra_params, ",d"), _fmt(row.gmacs, ".4f"),
            _fmt(row.latency_ms, ".3f"), _fmt(row.throughput_per_s, ",.0f"), _fmt(row.train_seconds, ".1f"),
            _fmt_stages(row.stage_seconds),
        ]))
    lines += ["", "Total train: the mean seconds of every training stage (teacher, assistant, ensemble "
                  "members, student) on the machine that trained it; teachers and assistants are trained once "
                  "and cached, so the seeds of an entry share that part.", "", *_comparison_lines(table)]
    from leaderboard.reproduction import reproduction_lines  # full tier: the paper's figures next to ours

    lines += reproduction_lines(table)
    return "\n".join(lines) + "\n"


def _comparison_lines(table: Table) -> list[str]:
    """The table's comparisons: one line per (entry, reference), with nominal and Holm-adjusted CIs."""
    pairs = [(row, reference, comparison) for row in table.rows
             for reference, comparison in ((BASELINE, row.vs_baseline), (SINGLE_TEACHER_KD, row.vs_kd))
             if comparison is not None]
    if not pairs:
        return [f"Comparisons: none (the table has no default `{BASELINE}` or `{SINGLE_TEACHER_KD}` entry)."]
    primary = table.primary_metric
    header = ["Method", "Compared with", f"Δ {primary}", "Paired seeds", f"Nominal {1 - ALPHA:.0%} CI",
              "Holm-adjusted CI (level)", "p", "Holm p", "Verdict"]
    lines = [f"Comparisons of {primary}, paired by seed: m = {table.comparisons} paired t tests in this table, "
             f"Holm-adjusted to a family-wise {1 - ALPHA:.0%} level.", "",
             _markdown_line(header), _markdown_line([":---"] * 2 + ["---:"] * 6 + [":---"])]
    for row, reference, c in pairs:
        lines.append(_markdown_line([
            row.name, reference, _fmt(c.diff.mean, "+.2f"), str(c.diff.n),
            interval_text(c.diff.ci_low, c.diff.ci_high),
            f"{interval_text(c.low, c.high)} ({1 - c.level:.2%})" if c.tested else "",
            _p_text(c.p), _p_text(c.p_holm), verdict(c),
        ]))
    return lines


def verdict(comparison: Comparison) -> str:
    """What the Holm-adjusted interval supports, and nothing more (never "beats" or "no effect")."""
    if not comparison.tested:
        diff = comparison.diff
        if diff.nonfinite:
            return "not tested (non-finite metric)"
        return f"not tested ({diff.n} paired seed{'' if diff.n == 1 else 's'})"
    if comparison.sign > 0:
        return "separated (+)"
    if comparison.sign < 0:
        return "separated (\u2212)"
    return f"not separated (power: about {comparison.mdd:.1f} points)"


def interval_text(low: float, high: float) -> str:
    return "" if _missing(low) or _missing(high) else f"[{low:+.2f}, {high:+.2f}]"


def _p_text(p: float) -> str:
    if _missing(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_summary(summary: Summary) -> str:
    """``73.00 ± 2.00 (3)``; ``73.00 ± – (1)`` for one seed; a non-finite mean is flagged, e.g.
    ``inf (non-finite in 1 of 3 seeds)``; blank without values."""
    if summary.n == 0 or summary.nonfinite:
        return format_mean(summary)
    spread = "–" if _missing(summary.std) else f"{summary.std:.2f}"
    return f"{summary.mean:.2f} ± {spread} ({summary.n})"


def format_mean(summary: Summary) -> str:
    """The mean alone (secondary metrics), flagged when a value was not finite; blank without values."""
    if summary.nonfinite:
        return f"{summary.mean} (non-finite in {summary.nonfinite} of {summary.n} seeds)"
    return _fmt(summary.mean, ".2f")


def _fmt_stages(stages: dict[str, float] | None) -> str:
    """``138 (teacher 91 + assistant 33 + student 14)``; the student alone is shown without parts."""
    if not stages:
        return ""
    total = sum(stages.values())
    if list(stages) == ["student"]:
        return f"{total:.0f}"
    members = " + ".join(f"{stage} {seconds:.0f}" for stage, seconds in stages.items())
    return f"{total:.0f} ({members})"


def _teacher_text(teacher: Teacher, primary: str) -> str:
    text = teacher.model
    if teacher.sha256:
        text += f" `{teacher.sha256[:8]}`"
    if teacher.metric is not None:
        text += f" ({primary} {teacher.metric:.2f})"
    if teacher.gmacs is not None:
        text += f", {teacher.gmacs:.4f} GMACs, {teacher.latency_ms:.3f} ms"
    return text


def _markdown_line(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _fmt(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or blank when it is missing or nan."""
    return "" if _missing(value) else format(value, spec)


def format_diff(diff: Summary | None) -> str:
    """``+1.20 [+0.40, +2.00]`` (nominal 95% CI); no CI with one shared seed, blank with none."""
    if diff is None or diff.n == 0:
        return ""
    if diff.n == 1 or diff.nonfinite:
        return f"{diff.mean:+.2f} ({diff.n} seed{'' if diff.n == 1 else 's'}{', non-finite' if diff.nonfinite else ''})"
    return f"{diff.mean:+.2f} [{diff.ci_low:+.2f}, {diff.ci_high:+.2f}]"


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


COMPARISON_COLUMNS = ("mean", "ci_low", "ci_high", "n", "p", "p_holm", "holm_level", "holm_low", "holm_high",
                      "mdd", "verdict")


def comparison_values(comparison: Comparison | None) -> list[Any]:
    if comparison is None:
        return [None] * len(COMPARISON_COLUMNS)
    d = comparison.diff
    return [d.mean, d.ci_low, d.ci_high, d.n, comparison.p, comparison.p_holm, comparison.level,
            comparison.low, comparison.high, comparison.mdd, verdict(comparison)]


def render_csv(table: Table) -> str:
    """One table as CSV with raw numbers (blank cells where a value is not available).

    ``diff_*`` compares with the default baseline, ``diff_kd_*`` with the default kd entry:
    ``mean, ci_low, ci_high`` nominal; ``n`` paired seeds; ``p`` the paired t test;
    ``p_holm, holm_level, holm_low, holm_high`` after Holm's adjustment over the table's
    ``comparisons`` tests; ``mdd`` the difference detectable with 80% power at ``holm_level``.
    """
    metric_columns = [f"{m}_{stat}" for m in table.metrics for stat in ("mean", "std")]
    header = ["protocol", "protocol_hash", "method", "entry", "default", "label", "teachers", "status",
              "verified_seeds", "n", "comparisons", *metric_columns,
              *(f"{prefix}_{column}" for prefix in ("diff", "diff_kd") for column in COMPARISON_COLUMNS),
              "student_params", "extra_params", "gmacs", "latency_ms", "throughput_per_s", "train_seconds",
              *(f"{stage}_train_seconds" for stage in STAGES if stage != "student"), "total_train_seconds"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        stages = row.stage_seconds or {}
        values = [row.verified, row.n, table.comparisons,
                  *(v for m in table.metrics for v in (row.metrics[m].mean, row.metrics[m].std)),
                  *comparison_values(row.vs_baseline), *comparison_values(row.vs_kd),
                  row.student_params, row.extra_params, row.gmacs,
                  row.latency_ms, row.throughput_per_s, row.train_seconds,
                  *(stages.get(stage) for stage in STAGES if stage != "student"), row.total_train_seconds]
        writer.writerow([table.protocol_key, table.protocol_hash, row.method, row.entry, row.default, row.label,
                         row.teachers, row.status, *("" if _missing(v) else v for v in values)])
    return buffer.getvalue()


def leaderboard_files(tables: list[Table]) -> dict[str, bytes]:
    """Every file of a leaderboard, by name: README.md (all tables), ``<key>.csv`` and the plots of each table."""
    from leaderboard.plots import plot_files

    files = {README: render_markdown(tables).encode()}
    files.update({f"{table.protocol_key}.csv": render_csv(table).encode() for table in tables})
    from leaderboard.reproduction import render_reproduction_csv

    for table in tables:
        reproduction = render_reproduction_csv(table)
        if reproduction is not None:
            files[f"{table.protocol_key}{REPRODUCTION_SUFFIX}"] = reproduction.encode()
    for table in tables:
        files.update(plot_files(table))
    return files


def write_leaderboard(records_root: str | os.PathLike, out_dir: str | os.PathLike,
                      overwrite: bool = False) -> list[Path]:
    """Write ``out_dir/README.md`` (all tables), ``out_dir/<protocol key>.csv`` per table and its plots.

    Written through :func:`leaderboard.manifest.write_outputs`: every file
    atomically; a file already there that this tool did not write (or that was
    edited since) is refused before anything is written, unless ``overwrite``;
    files of an earlier render that are not written again (a protocol key
    without records any more) are removed, and nothing else is. Returns the
    written paths, README first.
    """
    tables = build_tables(iter_records(records_root))
    return write_outputs(out_dir, leaderboard_files(tables), WRITER, overwrite=overwrite)


def check_leaderboard_output(out_dir: str | os.PathLike, keys: Iterable[str], overwrite: bool = False) -> None:
    """Before a long run whose leaderboard goes to ``out_dir``: refuse now (not after the run) when
    README.md or a table or plot of one of the protocol ``keys`` is there and was not written by this tool."""
    out = Path(out_dir)
    names = [README, *(f"{key}{suffix}" for key in keys for suffix in (".csv", REPRODUCTION_SUFFIX))]
    plots = re.compile("|".join(re.escape(key) + r"-\w+-vs-\w+\.(png|svg)" for key in keys) or "(?!)")
    if out.is_dir():
        names += sorted(path.name for path in out.iterdir() if plots.fullmatch(path.name))
    check_targets(out, names, overwrite)
