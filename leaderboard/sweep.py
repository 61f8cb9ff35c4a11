"""Output of the TAKD assistant-size sweep (:mod:`bench.sweep`): Markdown, CSV and a plot.

Written as ``<protocol key>-takd-assistant-sweep.{md,csv,png,svg}``; the plot shows
the student's primary metric (mean ± std over seeds) against the assistant's
parameter count, with single-teacher KD and the baseline as reference lines.
The files are written through :func:`leaderboard.manifest.write_outputs`, so a
re-render replaces only the sweep's own files and never a file it did not write.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from bench.stats import ALPHA, Comparison, holm
from bench.sweep import SweepTable
from leaderboard.manifest import write_outputs
from leaderboard.plots import figure_files, log_x_axis, pyplot
from leaderboard.render import (
    COMPARISON_COLUMNS,
    comparison_values,
    format_diff,
    format_summary,
    interval_text,
    verdict,
)

REFERENCES = ("kd", "baseline")  # every assistant's student is compared with both, paired by seed


def sweep_comparisons(table: SweepTable) -> dict[tuple[int, str], Comparison]:
    """Holm's adjustment over all comparisons of the sweep table (each row vs kd and vs baseline):
    one family, as in the leaderboard tables (:func:`bench.stats.holm`)."""
    return holm({(i, ref): diff for i, row in enumerate(table.rows) for ref in REFERENCES
                 if (diff := _diff(row, ref)) is not None})


def _diff(row, reference: str):
    return row.diff_kd if reference == "kd" else row.diff_baseline


def _holm_cell(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    if not comparison.tested:
        return verdict(comparison)
    return f"{interval_text(comparison.low, comparison.high)} ({1 - comparison.level:.2%}): {verdict(comparison)}"


def render_sweep_markdown(table: SweepTable) -> str:
    p, primary = table.protocol, table.protocol.primary_metric
    adjusted = sweep_comparisons(table)
    m = next(iter(adjusted.values())).m if adjusted else 0
    lines = [f"## {p.key}: TAKD assistant-size sweep", "",
             f"Teacher {p.teacher.model} → assistant → student {p.student}; every stage plain KD "
             f"(T and alpha of `takd`). Student {primary}: mean ± std over seeds (n); Δ: paired by seed, "
             f"nominal {1 - ALPHA:.0%} Student-t CI, then the Holm-adjusted CI over the m = {m} paired t tests of "
             f"this table (family-wise {1 - ALPHA:.0%}) and the verdict it supports. * marks the protocol's own "
             "assistant, fixed before any TAKD run.", ""]
    for name, summary in table.references.items():
        lines.append(f"- reference `{name}`: {format_summary(summary)}")
    lines += ["", "| Assistant | Params | GMACs | Assistant's own " + primary + " | Student " + primary
              + " | Δ vs kd [95% CI] | Holm-adjusted vs kd | Δ vs baseline [95% CI] | Holm-adjusted vs baseline "
              "| Total train, all stages (s) |",
              "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for i, row in enumerate(table.rows):
        lines.append("| " + " | ".join([
            row.assistant + (" *" if row.is_protocol_default else ""), f"{row.assistant_params:,}",
            "" if row.assistant_gmacs is None else f"{row.assistant_gmacs:.4f}",
            "" if row.assistant_metric is None else f"{row.assistant_metric:.2f}",
            format_summary(row.student),
            *(cell for ref in REFERENCES
              for cell in (format_diff(_diff(row, ref)), _holm_cell(adjusted.get((i, ref))))),
            "" if row.total_train_seconds is None else f"{row.total_train_seconds:.0f}",
        ]) + " |")
    best = max(table.rows, key=lambda r: r.student.mean, default=None)
    if best is not None:
        lines += ["", f"Highest mean: {best.assistant} ({best.student.mean:.2f}); whether it is separated from "
                      "the others is for the intervals to say, not the means."]
    return "\n".join(lines) + "\n"


def render_sweep_csv(table: SweepTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["protocol", "protocol_hash", "assistant", "protocol_default", "assistant_params",
                     "assistant_gmacs", "assistant_metric", "student_mean", "student_std", "n", "comparisons",
                     *(f"diff_{ref}_{column}" for ref in REFERENCES for column in COMPARISON_COLUMNS),
                     "total_train_seconds"])
    adjusted = sweep_comparisons(table)
    m = next(iter(adjusted.values())).m if adjusted else 0
    for i, row in enumerate(table.rows):
        values = [row.assistant_params, row.assistant_gmacs, row.assistant_metric, row.student.mean,
                  row.student.std, row.student.n, m,
                  *(v for ref in REFERENCES for v in comparison_values(adjusted.get((i, ref)))),
                  row.total_train_seconds]
        writer.writerow([table.protocol.key, table.protocol.spec_hash, row.assistant, row.is_protocol_default,
                         *("" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values)])
    return buffer.getvalue()


def sweep_stem(protocol_key: str) -> str:
    return f"{protocol_key}-takd-assistant-sweep"


def sweep_file_names(protocol_key: str) -> list[str]:
    """The names :func:`write_sweep` may write for a protocol (to check a folder before a long sweep)."""
    return [f"{sweep_stem(protocol_key)}.{ext}" for ext in ("md", "csv", "png", "svg")]


def write_sweep(table: SweepTable, out_dir: str | Path, overwrite: bool = False) -> list[Path]:
    """Write ``<key>-takd-assistant-sweep.{md,csv,png,svg}`` to ``out_dir``; returns the paths.
    A file there that this tool did not write is refused unless ``overwrite``."""
    stem = sweep_stem(table.protocol.key)
    files = {f"{stem}.md": render_sweep_markdown(table).encode(), f"{stem}.csv": render_sweep_csv(table).encode(),
             **_plot(table, stem)}
    return write_outputs(out_dir, files, f"sweep {table.protocol.key}", overwrite=overwrite)


def _plot(table: SweepTable, stem: str) -> dict[str, bytes]:
    if not table.rows:
        return {}
    plt = pyplot()

    primary = table.protocol.primary_metric
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    x = [r.assistant_params / 1e6 for r in table.rows]
    spread = [r.student.std if math.isfinite(r.student.std) else 0.0 for r in table.rows]  # one seed: no bar
    ax.errorbar(x, [r.student.mean for r in table.rows], yerr=spread, fmt="o-",
                color="tab:red", capsize=3, label="TAKD student (mean ± std)")
    for r, xi in zip(table.rows, x, strict=True):
        ax.annotate(r.assistant.split("_")[-1] + (" *" if r.is_protocol_default else ""), (xi, r.student.mean),
                    textcoords="offset points", xytext=(5, 5), fontsize=8)
    styles = {"kd": ("--", "tab:blue"), "baseline": (":", "tab:gray")}
    for name, summary in table.references.items():
        style, colour = styles[name]
        ax.axhline(summary.mean, ls=style, color=colour, lw=1, label=f"{name} (no assistant)")
    log_x_axis(ax)
    ax.margins(x=0.15)
    ax.set_xlabel("assistant size, M parameters (labels: width; * the protocol's assistant)")
    ax.set_ylabel(f"student {primary}")
    ax.set_title(f"{table.protocol.key}: student {primary} vs assistant size")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return figure_files(fig, stem)
