"""The reproduction table of a full-tier protocol: our numbers next to the paper's.

For every published figure about a protocol (its claims, :mod:`bench.claims`: teacher, student alone
and each method of the paper's table) one line: the paper's figure, marked as the paper's, with its
source; our leaderboard entry for the same method (:attr:`bench.claims.Claim.method`), its mean over
our seeds with the 95% Student-t CI of the mean (:func:`bench.stats.summarize`); and whether the
paper's figure lies inside that CI. A claim without our records (a method KDBench does not have, or
has not run yet) shows the paper's figure only. The teacher is one model (the user's file or one
suite-trained run), so it has a value and no CI.

Claims come from the data files, records from runs: nothing here turns one into the other.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

from bench.claims import Claim, claims_for
from bench.stats import Summary


@dataclass(frozen=True)
class ReproductionRow:
    """One claim with what we have for it: an entry's summary, the teacher's value, or nothing."""

    claim: Claim
    ours: str = ""  # our entry's name (``kd``, ``kd [teacher file 1a2b3c4d]``), or the teacher's model
    summary: Summary | None = None  # over our seeds (methods and the student)
    value: float | None = None  # the teacher's own accuracy (one model, no CI)

    @property
    def inside(self) -> bool | None:
        """Whether the paper's figure lies in our 95% CI (``None``: not decidable, see :attr:`why_not`)."""
        s, paper = self.summary, self.claim.value
        if paper is None or s is None or s.n < 2 or not (math.isfinite(s.ci_low) and math.isfinite(s.ci_high)):
            return None
        return s.ci_low <= paper <= s.ci_high

    @property
    def why_not(self) -> str:
        if self.claim.value is None:
            return "no published figure"
        if self.value is not None:
            return "one teacher: no CI"
        if self.summary is None:
            return "no runs of ours"
        if self.summary.n < 2:
            return f"{self.summary.n} seed: no CI"
        return "non-finite values"


def protocol_name(key: str) -> str:
    """``cifar100-resnet32x4-resnet8x4`` of the table key ``cifar100-resnet32x4-resnet8x4@v1``."""
    return key.rsplit("@v", 1)[0]


def reproduction_rows(table) -> list[ReproductionRow]:
    """The claims about ``table``'s protocol (a :class:`leaderboard.render.Table`), each with our entries
    for it (one line per entry: a method run with two teacher files has two), in the paper's order."""
    rows = []
    for claim in claims_for(protocol_name(table.protocol_key)):
        if claim.role == "teacher":
            same_metric = claim.metric == table.primary_metric  # a teacher's record holds the primary metric
            teachers = [t for t in table.teachers if t.metric is not None and same_metric]
            rows += [ReproductionRow(claim, _teacher_name(t), value=t.metric) for t in teachers] or [
                ReproductionRow(claim)]
            continue
        method = claim.method or ("baseline" if claim.role == "student" else None)
        ours = [r for r in table.rows if method is not None and r.method == method and claim.metric in r.metrics]
        rows += [ReproductionRow(claim, r.name, r.metrics[claim.metric]) for r in ours] or [ReproductionRow(claim)]
    return rows


def _teacher_name(teacher) -> str:
    return teacher.model + (f" `{teacher.sha256[:8]}`" if teacher.sha256 else "")


def reproduction_lines(table) -> list[str]:
    """The Markdown section (empty when no claim names the protocol)."""
    from leaderboard.render import _markdown_line

    rows = reproduction_rows(table)
    if not rows:
        return []
    metric = rows[0].claim.metric
    sources = dict.fromkeys((r.claim.source, r.claim.url) for r in rows)
    lines = [
        "", f"### Reproduction of the published {metric}", "",
        "The paper's column holds figures **as the papers publish them** (claims with their source, never "
        "KDBench results); ours are the mean over our seeds with its 95% CI. \"Inside\" says whether the "
        "paper's figure lies in our 95% CI. A row without runs of ours shows the paper's figure only.",
    ]
    reported = dict.fromkeys(r.claim.reported_as for r in rows if r.claim.reported_as)
    lines += [line for text in reported for line in ("", f"How the paper reports: {text}")]
    lines += ["", _markdown_line(["Paper's row", f"Paper's {metric} (claim)", "Source", "Ours (entry)",
                                  f"Our {metric}: mean [95% CI] (seeds)", "Paper inside our CI", "Note"]),
              _markdown_line([":---", "---:", ":---", ":---", "---:", ":---", ":---"])]
    for row in rows:
        lines.append(_markdown_line([
            row.claim.label, _paper_text(row.claim), _source_key(row.claim, sources), _ours_text(row),
            _our_value_text(row), _inside_text(row), row.claim.note]))
    lines += ["", *(f"[{i}] {source}" + (f" <{url}>" if url else "") for i, (source, url) in
                    enumerate(sources, start=1))]
    return lines


def _source_key(claim: Claim, sources: dict) -> str:
    return f"[{list(sources).index((claim.source, claim.url)) + 1}]"


def _paper_text(claim: Claim) -> str:
    return "no figure" if claim.value is None else f"{claim.value:.2f} (paper)"


def _ours_text(row: ReproductionRow) -> str:
    if row.ours:
        return row.ours
    if row.claim.role == "teacher":
        return "no teacher in our records"
    if row.claim.method is None and row.claim.role != "student":
        return "not in KDBench (paper's figure only)"
    return "no runs yet (paper's figure only)"


def _our_value_text(row: ReproductionRow) -> str:
    if row.value is not None:
        return f"{row.value:.2f} (one teacher)"
    s = row.summary
    if s is None or s.n == 0:
        return ""
    if s.n < 2 or s.nonfinite:
        return f"{s.mean:.2f} ({s.n})"
    return f"{s.mean:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}] ({s.n})"


def _inside_text(row: ReproductionRow) -> str:
    inside = row.inside
    if inside is None:
        return f"– ({row.why_not})"
    return "yes" if inside else ("no (paper above)" if row.claim.value > row.summary.ci_high else "no (paper below)")


CSV_HEADER = ("protocol", "label", "role", "method", "paper_value", "source", "ours", "n", "mean", "ci_low",
              "ci_high", "teacher_value", "inside", "note")


def render_reproduction_csv(table) -> str | None:
    """The reproduction table as CSV with raw numbers (``None`` when no claim names the protocol);
    ``inside`` is blank when it cannot be decided."""
    rows = reproduction_rows(table)
    if not rows:
        return None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        c, s = row.claim, row.summary
        stats = [s.n, s.mean, s.ci_low, s.ci_high] if s is not None else [None] * 4
        values = [table.protocol_key, c.label, c.role, c.method, c.value, c.source, row.ours, *stats, row.value,
                  row.inside, c.note]
        writer.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values])
    return buffer.getvalue()
