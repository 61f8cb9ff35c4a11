"""Accuracy-vs-cost plots of a leaderboard table, with the Pareto front marked.

For each protocol: the primary metric (mean over seeds, ± std as error bars)
against GMACs and against batch-1 latency, one point per method's student and
one for the teacher; a teacher ensemble's own accuracy is a horizontal
reference line (an ensemble has no single cost). A point is on the Pareto front
when no other point is at least as accurate and at most as costly while strictly
better in one of the two. A row whose mean is not finite is left out (it is
flagged in the table), and a one-seed row has no error bar.
Rendered to bytes (PNG and SVG) and written with the tables by
:func:`leaderboard.manifest.write_outputs`.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from leaderboard.render import Table

AXES = (("gmacs", "GMACs (batch 1)"), ("latency_ms", "latency, ms (batch 1)"))


@dataclass(frozen=True)
class Point:
    label: str
    cost: float
    score: float
    spread: float = 0.0
    is_teacher: bool = False


def pareto_front(points: list[Point]) -> list[Point]:
    """The non-dominated points (higher score and lower cost are better), by increasing cost."""
    front = []
    for p in points:
        dominated = any(
            q.score >= p.score and q.cost <= p.cost and (q.score > p.score or q.cost < p.cost) for q in points
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: (p.cost, -p.score))


def table_points(table: Table, axis: str) -> list[Point]:
    points = []
    for row in table.rows:
        cost = getattr(row, axis)
        summary = row.metrics[table.primary_metric]
        if cost is not None and math.isfinite(summary.mean):
            points.append(Point(row.name, cost, summary.mean, summary.std if math.isfinite(summary.std) else 0.0))
    for teacher in table.teachers:
        cost = getattr(teacher, axis)
        if cost is not None and teacher.metric is not None:
            points.append(Point(f"teacher {teacher.model}", cost, teacher.metric, is_teacher=True))
    return points


def reference_lines(table: Table) -> list[tuple[str, float]]:
    """(label, primary metric) of each teacher ensemble of the table."""
    return [(f"ensemble: {e.members}", e.metric) for e in table.ensembles if e.metric is not None]


def plot_files(table: Table) -> dict[str, bytes]:
    """The table's plots, ``<key>-<metric>-vs-<axis>.png|svg`` -> bytes (none if nothing to plot)."""
    plt = pyplot()
    written: dict[str, bytes] = {}
    for axis, axis_label in AXES:
        points = table_points(table, axis)
        if not points:
            continue
        front = pareto_front(points)
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        labels: dict[tuple[float, float], list[str]] = {}
        for p in points:
            labels.setdefault((p.cost, round(p.score, 1)), []).append(p.label)  # one label for coinciding points
            ax.errorbar(p.cost, p.score, yerr=p.spread or None, fmt="*" if p.is_teacher else "o",
                        color="tab:red" if p in front else "tab:gray", markersize=9 if p.is_teacher else 6,
                        capsize=3)
        for (cost, score), names in labels.items():
            ax.annotate(", ".join(names), (cost, score), textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.plot([p.cost for p in front], [p.score for p in front], "--", color="tab:red", lw=1,
                label="Pareto front")
        for label, value in reference_lines(table):
            ax.axhline(value, ls=":", color="tab:blue", lw=1, label=label)
        log_x_axis(ax)
        ax.margins(x=0.25, y=0.15)
        ax.set_xlabel(axis_label)
        ax.set_ylabel(f"{table.primary_metric} (mean ± std over seeds)")
        ax.set_title(f"{table.protocol_key}: {table.primary_metric} vs {axis_label.split(',')[0].split(' (')[0]}")
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(alpha=0.3)
        written.update(figure_files(fig, f"{table.protocol_key}-{table.primary_metric}-vs-{axis.removesuffix('_ms')}"))
    return written


def log_x_axis(ax) -> None:
    """A logarithmic x axis with plain-number ticks at 1, 2 and 5 per decade."""
    import matplotlib.ticker

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, with stable SVG element ids (imported
    lazily: rendering tables needs no matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "kdbench"  # re-rendering an unchanged figure changes no bytes
    import matplotlib.pyplot as plt

    return plt


def figure_files(fig, stem: str) -> dict[str, bytes]:
    """``{stem.png: ..., stem.svg: ...}``: ``fig`` rendered (the SVG without a date, so an unchanged
    figure re-renders to the same bytes), then closed."""
    fig.tight_layout()
    files = {}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        files[f"{stem}.{fmt}"] = buffer.getvalue()
    pyplot().close(fig)
    return files
