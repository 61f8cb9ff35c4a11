"""Build leaderboard tables from result records and render them as Markdown and CSV.

One table per protocol key: records of different keys (versions) or different
protocol hashes never share a table, and a key seen with two hashes is an
error, since its numbers would not be comparable. A table has one row per
method with every metric summarized over seeds (:mod:`bench.stats`), and the
paired difference of the primary metric to the ``baseline`` student over the
seeds both ran, with its 95% confidence interval.

Numbers stay numbers until rendering: :func:`render_markdown` formats them for
people, :func:`render_csv` writes them raw for machines (a blank cell means
"not available").
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import DataError
from bench.paths import atomic_write_text
from bench.results import iter_records
from bench.stats import Summary, paired_difference, summarize

BASELINE = "baseline"  # the method name of the student trained alone
SINGLE_TEACHER_KD = "kd"  # the reference of the chain and ensemble methods (Δ vs kd column)
STAGES = ("teacher", "assistant", "member", "student")  # training stages, in the order they run
HASH_PREFIX = 12  # characters of the protocol hash shown in headings
#: names of the files write_leaderboard generates per protocol key: <key>.csv and <key>-<metric>-vs-<axis>.png|svg
GENERATED_NAME = re.compile(r"[\w.-]+@v\d+(\.csv|-\w+-vs-\w+\.(png|svg))")


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
    """One method of one table; every summary is over that method's seeds."""

    method: str
    status: str  # "claimed" if any record is claimed, else "verified"
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

    @property
    def total_train_seconds(self) -> float | None:
        """The full cost of the entry: every stage's training, the teachers' included."""
        return sum(self.stage_seconds.values()) if self.stage_seconds else None


@dataclass(frozen=True)
class Ensemble:
    """A teacher ensemble seen in a table's records, with its own value of the primary metric."""

    members: str
    metric: float | None


@dataclass(frozen=True)
class Table:
    """All results of one protocol (key and hash), rows sorted by the primary metric, best first."""

    protocol_key: str
    protocol_hash: str
    tier: str | None
    primary_metric: str
    metrics: tuple[str, ...]  # primary metric first, then the others by name
    teachers: tuple[Teacher, ...]
    rows: tuple[Row, ...]
    ensembles: tuple[Ensemble, ...] = ()


def build_tables(records: Iterable[dict[str, Any]]) -> list[Table]:
    """Group ``records`` by protocol key and build one :class:`Table` per key, ordered by key.

    Raises :class:`DataError` if one key has records with two protocol hashes
    (or two primary metrics), or if a method has two records for one seed.
    """
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_key[record["protocol"]["key"]].append(record)
    return [_build_table(key, by_key[key]) for key in sorted(by_key)]


def _build_table(key: str, records: list[dict[str, Any]]) -> Table:
    protocol_hash = _single((r["protocol"]["hash"] for r in records), f"protocol {key!r}: protocol hashes")
    primary = _single((r["primary_metric"] for r in records), f"protocol {key!r}: primary metrics")
    by_method: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for record in sorted(records, key=lambda r: (r["method"]["name"], r["seed"])):
        name, seed = record["method"]["name"], record["seed"]
        if seed in by_method[name]:
            raise DataError(f"protocol {key!r}: method {name!r} has two records for seed {seed}")
        by_method[name][seed] = record
    metrics = (primary, *sorted({m for r in records for m in r["metrics"]} - {primary}))
    baseline = _metric_by_seed(by_method[BASELINE], primary) if BASELINE in by_method else None
    kd = _metric_by_seed(by_method[SINGLE_TEACHER_KD], primary) if SINGLE_TEACHER_KD in by_method else None
    rows = [_build_row(name, seeds, metrics, baseline, kd, f"protocol {key!r}, method {name!r}")
            for name, seeds in by_method.items()]
    rows.sort(key=lambda row: (-row.metrics[primary].mean, row.method))
    return Table(key, protocol_hash, records[0]["protocol"].get("tier"), primary, metrics,
                 _teachers(by_method.values(), primary), tuple(rows), _ensembles(records, primary))


def _build_row(method: str, by_seed: dict[int, dict[str, Any]], metrics: tuple[str, ...],
               baseline: dict[int, float] | None, kd: dict[int, float] | None, where: str) -> Row:
    records = list(by_seed.values())
    summaries = {m: summarize(r["metrics"][m] for r in records if m in r["metrics"]) for m in metrics}
    diff = diff_kd = None
    if baseline is not None and method != BASELINE:
        diff = paired_difference(_metric_by_seed(by_seed, metrics[0]), baseline)
    if kd is not None and method not in (BASELINE, SINGLE_TEACHER_KD):
        diff_kd = paired_difference(_metric_by_seed(by_seed, metrics[0]), kd)
    times = [r["cost"]["train_seconds"] for r in records if r["cost"].get("train_seconds") is not None]
    efficiency = [r["efficiency"] for r in records]
    return Row(
        method=method,
        status="claimed" if any(r["status"] == "claimed" for r in records) else "verified",
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
    )


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
    return {seed: r["metrics"][metric] for seed, r in by_seed.items() if metric in r["metrics"]}


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

def render_markdown(tables: Iterable[Table]) -> str:
    """The whole leaderboard as GitHub-flavoured Markdown: one section per protocol."""
    sections = [_markdown_section(table) for table in tables]
    intro = ("# KDBench leaderboard\n\n"
             "Metrics are mean ± sample std over seeds (number of seeds). Δ is the paired difference "
             f"of the primary metric to the `{BASELINE}` student over the seeds both ran, with its "
             "95% Student-t confidence interval. Claimed rows were not reproduced by the suite.\n")
    return "\n".join([intro, *sections]) if sections else intro + "\nNo results yet.\n"


def _markdown_section(table: Table) -> str:
    primary = table.primary_metric
    teachers = ", ".join(_teacher_text(t, primary) for t in table.teachers) or "none"
    with_kd = any(row.diff_kd is not None for row in table.rows)
    header = ["Method", "Teachers", "Status", "Seeds", f"{primary} (primary)", *table.metrics[1:],
              f"Δ {primary} vs {BASELINE} [95% CI]",
              *([f"Δ {primary} vs {SINGLE_TEACHER_KD} [95% CI]"] if with_kd else []),
              "Student params", "Extra params", "GMACs", "Latency (ms, batch 1)", "Throughput (img/s)",
              "Student train (s)", "Total train, all stages (s)"]
    align = [":---", ":---", ":---"] + ["---:"] * (len(header) - 3)
    lines = [
        f"## {table.protocol_key}",
        "",
        f"Protocol hash `{table.protocol_hash[:HASH_PREFIX]}` · tier {table.tier or '?'} · teacher {teachers}",
    ]
    for ensemble in table.ensembles:
        metric = "" if ensemble.metric is None else f" ({primary} {ensemble.metric:.2f})"
        lines.append(f"Ensemble reference: {ensemble.members}{metric}")
    lines += ["", _markdown_line(header), _markdown_line(align)]
    for row in table.rows:
        main = row.metrics[primary]
        lines.append(_markdown_line([
            row.method, row.teachers, row.status, str(row.n),
            f"{main.mean:.2f} ± {main.std:.2f} ({main.n})",
            *(_fmt(row.metrics[m].mean, ".2f") for m in table.metrics[1:]),
            format_diff(row.diff), *([format_diff(row.diff_kd)] if with_kd else []),
            _fmt(row.student_params, ",d"), _fmt(row.extra_params, ",d"), _fmt(row.gmacs, ".4f"),
            _fmt(row.latency_ms, ".3f"), _fmt(row.throughput_per_s, ",.0f"), _fmt(row.train_seconds, ".1f"),
            _fmt_stages(row.stage_seconds),
        ]))
    lines += ["", "Total train: the mean seconds of every training stage (teacher, assistant, ensemble "
                  "members, student) on the machine that trained it; teachers and assistants are trained once "
                  "and cached, so the seeds of an entry share that part."]
    return "\n".join(lines) + "\n"


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
    """``+1.20 [+0.40, +2.00]``; no CI with one shared seed, blank with none."""
    if diff is None or diff.n == 0:
        return ""
    if diff.n == 1:
        return f"{diff.mean:+.2f} (1 seed)"
    return f"{diff.mean:+.2f} [{diff.ci_low:+.2f}, {diff.ci_high:+.2f}]"


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def render_csv(table: Table) -> str:
    """One table as CSV with raw numbers (blank cells where a value is not available)."""
    metric_columns = [f"{m}_{stat}" for m in table.metrics for stat in ("mean", "std")]
    header = ["protocol", "protocol_hash", "method", "teachers", "status", "n", *metric_columns,
              "diff_mean", "diff_ci_low", "diff_ci_high", "diff_kd_mean", "diff_kd_ci_low", "diff_kd_ci_high",
              "student_params", "extra_params", "gmacs", "latency_ms", "throughput_per_s", "train_seconds",
              *(f"{stage}_train_seconds" for stage in STAGES if stage != "student"), "total_train_seconds"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        missing = Summary(math.nan, math.nan, 0, math.nan, math.nan)
        diff, diff_kd, stages = row.diff or missing, row.diff_kd or missing, row.stage_seconds or {}
        values = [row.n,
                  *(v for m in table.metrics for v in (row.metrics[m].mean, row.metrics[m].std)),
                  diff.mean, diff.ci_low, diff.ci_high, diff_kd.mean, diff_kd.ci_low, diff_kd.ci_high,
                  row.student_params, row.extra_params, row.gmacs,
                  row.latency_ms, row.throughput_per_s, row.train_seconds,
                  *(stages.get(stage) for stage in STAGES if stage != "student"), row.total_train_seconds]
        writer.writerow([table.protocol_key, table.protocol_hash, row.method, row.teachers, row.status,
                         *("" if _missing(v) else v for v in values)])
    return buffer.getvalue()


def write_leaderboard(records_root: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``out_dir/README.md`` (all tables), ``out_dir/<protocol key>.csv`` per table and its plots.

    Each file is written atomically; returns the written paths, README first.
    Tables and plots left from protocol keys that have no records any more
    (e.g. a version whose records were replaced) are removed; nothing else is.
    """
    tables = build_tables(iter_records(records_root))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "README.md", *(out / f"{table.protocol_key}.csv" for table in tables)]
    texts = [render_markdown(tables), *(render_csv(table) for table in tables)]
    for path, text in zip(paths, texts, strict=True):
        atomic_write_text(path, text)
    from leaderboard.plots import write_plots

    for table in tables:
        paths += write_plots(table, out)
    for stale in sorted(set(out.iterdir()) - set(paths)):
        if GENERATED_NAME.fullmatch(stale.name):
            stale.unlink()
    return paths

