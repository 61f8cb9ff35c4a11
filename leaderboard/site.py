"""The leaderboard as a static web site (issue 17 item 3): ``kdbench leaderboard --html OUT``.

Rendered with Jinja2 templates (``leaderboard/templates``) from the same :class:`~leaderboard.render.Table`
objects as the Markdown tables, so every number is the records' and nothing else:

- ``index.html``: the tracks (task, tier, protocol and version), each with its hash, entries, records and
  how many entries are verified;
- ``protocol/<key>.html``: the table, sortable by any column (``site.js``, no server, works from
  ``file://``), each Δ with its Holm-adjusted interval drawn as a bar around zero, the teachers' and the
  ensemble's reference values, the accuracy-against-cost plots (inline SVG, with the teacher and ensemble
  as reference lines), claimed and verified entries apart (a status column and separate counts), and for a
  full-tier protocol the paper's numbers next to ours (:mod:`leaderboard.reproduction`);
- ``method/<name>.html``: the method's paper, formula and deviations (its module and class docstrings),
  its defaults and ranges, where it comes from (built-in file or plugin), and its results on every protocol.

The output is deterministic: the same records give the same bytes (no dates, sorted everything, fixed
number formats), which a test checks.
"""

from __future__ import annotations

import html
import inspect
import math
import os
import sys
from pathlib import Path
from typing import Any

from leaderboard.plots import AXES, pareto_front, reference_lines, table_points
from leaderboard.render import Row, Table, build_tables, format_mean, format_summary, interval_text, verdict
from leaderboard.reproduction import reproduction_rows

TEMPLATES = Path(__file__).with_name("templates")
STATIC = ("site.css", "site.js")


def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = _num
    return env


def _num(value: float | None, spec: str = ".2f") -> str:
    return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def page_name(key: str) -> str:
    """A protocol key as a file name (``classification-mini@v2`` -> ``classification-mini-v2.html``)."""
    return key.replace("@", "-").replace("+", "_") + ".html"


def _sort_value(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(round(float(value), 6))


def delta_bar(comparison, width: int = 140, span: float | None = None) -> str:
    """An inline SVG of a Δ and its Holm-adjusted interval around a zero line ('' when not tested)."""
    if comparison is None or not comparison.tested or not all(math.isfinite(v) for v in (comparison.low,
                                                                                          comparison.high)):
        return ""
    span = span or max(abs(comparison.low), abs(comparison.high), 1e-9)
    scale = (width / 2 - 4) / span

    def x(v: float) -> float:
        return round(width / 2 + v * scale, 1)

    kind = "pos" if comparison.sign > 0 else "neg" if comparison.sign < 0 else "none"
    label = html.escape(f"Δ {comparison.diff.mean:+.2f}, adjusted interval "
                        f"[{comparison.low:+.2f}, {comparison.high:+.2f}]")
    return (f'<svg class="bar {kind}" width="{width}" height="14" role="img" aria-label="{label}">'
            f"<title>{label}</title>"
            f'<line class="zero" x1="{width / 2}" y1="0" x2="{width / 2}" y2="14"/>'
            f'<line class="ci" x1="{x(comparison.low)}" y1="7" x2="{x(comparison.high)}" y2="7"/>'
            f'<circle cx="{x(comparison.diff.mean)}" cy="7" r="3"/></svg>')


def scatter_svg(table: Table, axis: str, axis_label: str, width: int = 560, height: int = 320) -> str:
    """Primary metric against ``axis`` (log x), the Pareto front, teacher points and ensemble lines."""
    points = table_points(table, axis)
    points = [p for p in points if p.cost > 0]
    if not points:
        return ""
    lines = reference_lines(table)
    ys = [p.score for p in points] + [v for _, v in lines]
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    x_lo, x_hi = math.log10(min(p.cost for p in points)), math.log10(max(p.cost for p in points))
    if x_hi - x_lo < 1e-9:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    left, right, top, bottom = 56, 16, 16, 40

    def px(cost: float) -> float:
        return round(left + (math.log10(cost) - x_lo) / (x_hi - x_lo) * (width - left - right), 1)

    def py(score: float) -> float:
        return round(top + (y_hi - score) / (y_hi - y_lo) * (height - top - bottom), 1)

    parts = [f'<svg class="plot" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(table.primary_metric)} against {html.escape(axis_label)}">',
             f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}"/>',
             f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}"/>',
             f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">'
             f"{html.escape(axis_label)} (log scale)</text>",
             f'<text x="14" y="{(top + height - bottom) / 2}" transform="rotate(-90 14 {(top + height - bottom) / 2})" '
             f'text-anchor="middle">{html.escape(table.primary_metric)}</text>',
             f'<text x="{left - 4}" y="{py(y_hi) + 4}" text-anchor="end">{y_hi:.1f}</text>',
             f'<text x="{left - 4}" y="{py(y_lo) + 4}" text-anchor="end">{y_lo:.1f}</text>']
    for label, value in lines:
        parts.append(f'<line class="reference" x1="{left}" y1="{py(value)}" x2="{width - right}" y2="{py(value)}">'
                     f"<title>{html.escape(label)} ({value:.2f})</title></line>")
    front = pareto_front(points)
    if len(front) > 1:
        path = " ".join(f"{px(p.cost)},{py(p.score)}" for p in front)
        parts.append(f'<polyline class="front" points="{path}"/>')
    for p in sorted(points, key=lambda p: (p.cost, p.score, p.label)):
        kind = "teacher" if p.is_teacher else "entry"
        parts.append(f'<circle class="{kind}" cx="{px(p.cost)}" cy="{py(p.score)}" r="4">'
                     f"<title>{html.escape(p.label)}: {p.score:.2f} at {p.cost:.4g}</title></circle>")
    parts.append("</svg>")
    return "".join(parts)


def _row_view(table: Table, row: Row, span: float) -> dict[str, Any]:
    primary = row.metrics[table.primary_metric]
    cells = {
        "method": row.name, "method_page": f"../method/{row.method}.html", "teachers": row.teachers,
        "status": row.status_text, "verified": row.status == "verified", "n": row.n,
        "primary": format_summary(primary), "primary_sort": _sort_value(primary.mean),
        "others": [(format_mean(row.metrics[m]), _sort_value(row.metrics[m].mean)) for m in table.metrics[1:]],
        "params": row.student_params, "extra": row.extra_params, "gmacs": row.gmacs, "latency": row.latency_ms,
        "train": row.total_train_seconds,
    }
    for name, comparison in (("baseline", row.vs_baseline), ("kd", row.vs_kd)):
        cells[f"vs_{name}"] = None if comparison is None else {
            "delta": f"{comparison.diff.mean:+.2f}", "sort": _sort_value(comparison.diff.mean),
            "interval": interval_text(comparison.low, comparison.high), "verdict": verdict(comparison),
            "bar": delta_bar(comparison, span=span)}
    return cells


def _span(table: Table) -> float:
    """One scale for every Δ bar of a table, so bars compare."""
    ends = [abs(v) for r in table.rows for c in (r.vs_baseline, r.vs_kd) if c is not None and c.tested
            for v in (c.low, c.high) if math.isfinite(v)]
    return max(ends, default=1.0) or 1.0


def protocol_view(table: Table) -> dict[str, Any]:
    span = _span(table)
    rows = [_row_view(table, row, span) for row in table.rows]
    task, tier = _task_of(table), table.tier or ""
    return {
        "key": table.protocol_key, "hash": table.protocol_hash, "tier": tier, "task": task,
        "primary": table.primary_metric, "metrics": list(table.metrics[1:]), "rows": rows,
        "verified": sum(r["verified"] for r in rows), "claimed": sum(not r["verified"] for r in rows),
        "teachers": [{"model": t.model, "sha": (t.sha256 or "")[:8], "metric": t.metric} for t in table.teachers],
        "ensembles": [{"members": e.members, "metric": e.metric} for e in table.ensembles],
        "comparisons": table.comparisons,
        "plots": [svg for axis, label in AXES if (svg := scatter_svg(table, axis, label))],
        "paper": [{"label": r.claim.label, "paper": r.claim.value, "metric": r.claim.metric,
                   "source": r.claim.source, "url": r.claim.url, "ours": r.ours,
                   "ours_value": (format_summary(r.summary) if r.summary is not None else _num(r.value)),
                   "inside": {True: "yes", False: "no", None: ""}[r.inside]}
                  for r in reproduction_rows(table)] if tier == "full" else [],
    }


def _task_of(table: Table) -> str:
    from bench.protocol import get_protocol
    from bench.registry import PROTOCOLS

    name = table.protocol_key.rsplit("@v", 1)[0].split("+")[0]
    return get_protocol(name).task if name in PROTOCOLS else ""


def method_view(name: str, tables: list[Table]) -> dict[str, Any]:
    from bench.registry import METHODS

    cls = METHODS.get(name)
    module = sys.modules.get(cls.__module__)
    results = []
    for table in tables:
        for row in table.rows:
            if row.method == name:
                comparison, primary = row.vs_baseline, row.metrics[table.primary_metric]
                versus = "" if comparison is None else f"{comparison.diff.mean:+.2f} {verdict(comparison)}"
                results.append({"protocol": table.protocol_key, "page": f"../protocol/{page_name(table.protocol_key)}",
                                "entry": row.name, "status": row.status_text,
                                "primary": f"{table.primary_metric} {format_summary(primary)}", "vs_baseline": versus})
    return {"name": name, "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "module_doc": inspect.cleandoc(module.__doc__ or "") if module else "",
            "class_doc": inspect.cleandoc(cls.__doc__ or ""), "defaults": dict(sorted(cls.defaults.items())),
            "ranges": dict(sorted((getattr(cls, "ranges", None) or {}).items())),
            "tasks": list(getattr(cls, "tasks", None) or ()),
            "origin": METHODS.source(name), "results": results}


def site_files(records) -> dict[str, bytes]:
    """Every file of the site, relative path -> bytes."""
    from bench.registry import METHODS

    env = _environment()
    tables = build_tables(records)
    files: dict[str, bytes] = {}
    views = [protocol_view(t) for t in tables]
    tracks = [{"key": v["key"], "page": f"protocol/{page_name(v['key'])}", "task": v["task"], "tier": v["tier"],
               "hash": v["hash"][:12], "entries": len(v["rows"]), "records": sum(r["n"] for r in v["rows"]),
               "verified": v["verified"]} for v in views]
    tracks.sort(key=lambda t: (t["task"], {"smoke": 0, "mini": 1, "full": 2}.get(t["tier"], 3), t["key"]))
    used = sorted({row.method for t in tables for row in t.rows} & set(METHODS.names()))
    files["index.html"] = env.get_template("index.html.j2").render(tracks=tracks, methods=used).encode()
    for view in views:
        files[f"protocol/{page_name(view['key'])}"] = env.get_template("protocol.html.j2").render(p=view).encode()
    for name in used:
        files[f"method/{name}.html"] = env.get_template("method.html.j2").render(m=method_view(name, tables)).encode()
    for static in STATIC:
        files[static] = (TEMPLATES / static).read_bytes()
    return files


def write_site(records_root: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Render the site of the records under ``records_root`` into ``out`` (created); returns the files."""
    from bench.paths import atomic_write_bytes
    from bench.results import iter_records

    out = Path(out)
    written = []
    for relative, content in sorted(site_files(iter_records(records_root)).items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, content)
        written.append(path)
    return written

