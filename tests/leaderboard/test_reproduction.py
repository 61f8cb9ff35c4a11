"""The reproduction table of full-tier protocols (leaderboard.reproduction): our mean and 95% CI next to
the paper's figure, whether the figure lies in our CI, and claims without records shown as the paper's
only. Synthetic records; the claims are the real data files of the CIFAR-100 protocols."""

import csv
import io

import pytest

from bench.claims import claims_for
from bench.stats import summarize
from leaderboard.render import build_tables, leaderboard_files, render_markdown
from leaderboard.reproduction import reproduction_rows
from test_render import record  # noqa: E402  (same folder)

KEY = "cifar100-resnet32x4-resnet8x4@v1"
TEACHER = {"model": "resnet32x4", "sha256": "ab12cd34" + "0" * 56, "source": "file", "metrics": {"top1": 79.1},
           "train_seconds": 0.0}


def full_record(method, seed, top1, label=""):
    r = record(method, seed, top1, label=label)
    r["protocol"].update(name=KEY.split("@")[0], key=KEY, tier="full")
    r["teacher"] = None if method == "baseline" else TEACHER
    return r


def full_records():
    """baseline 72.0/72.5/73.0 (CI about [71.26, 73.74], holds the paper's 72.50);
    kd 75.0/75.2/75.4 (CI about [74.70, 75.70], the paper's 73.33 lies below it)."""
    return [full_record("baseline", s, v) for s, v in enumerate((72.0, 72.5, 73.0))] + \
        [full_record("kd", s, v) for s, v in enumerate((75.0, 75.2, 75.4))]


def by_label(rows):
    return {row.claim.label: row for row in rows}


def test_each_method_is_next_to_the_papers_figure_with_our_ci():
    [table] = build_tables(full_records())
    rows = by_label(reproduction_rows(table))
    student, kd = rows["student"], rows["KD"]
    assert (student.claim.value, student.ours, student.summary.n) == (72.50, "baseline", 3)
    ci = summarize([72.0, 72.5, 73.0])
    assert (student.summary.ci_low, student.summary.ci_high) == (ci.ci_low, ci.ci_high)
    assert student.inside is True
    assert kd.claim.value == 73.33 and kd.summary.mean == pytest.approx(75.2)
    assert kd.inside is False  # the paper's figure is below our interval


def test_claims_without_records_show_the_paper_only():
    [table] = build_tables(full_records())
    rows = by_label(reproduction_rows(table))
    crd, dkd = rows["CRD"], rows["DKD"]
    assert crd.summary is None and crd.ours == "" and crd.inside is None and crd.claim.value == 75.51
    assert dkd.claim.value == 76.32 and dkd.claim.source.startswith("B. Zhao")
    markdown = render_markdown([table])
    line = next(x for x in markdown.splitlines() if x.startswith("| CRD |"))
    assert "75.51 (paper)" in line and "paper's figure only" in line
    # every published figure is marked as the paper's; rows without our records have nothing in our column
    for claim in claims_for("cifar100-resnet32x4-resnet8x4"):
        cells = next(x for x in markdown.splitlines() if x.startswith(f"| {claim.label} |")).split(" | ")
        assert cells[1] == (f"{claim.value:.2f} (paper)" if claim.value is not None else "no figure")
        if claim.label not in ("teacher", "student", "KD"):
            assert cells[4] == "" and cells[5] == "– (no runs of ours)", cells


def test_teacher_row_shows_our_teachers_value_without_ci():
    [table] = build_tables(full_records())
    teacher = by_label(reproduction_rows(table))["teacher"]
    assert teacher.value == 79.1 and teacher.claim.value == 79.42
    assert teacher.inside is None and teacher.why_not == "one teacher: no CI"
    assert "resnet32x4 `ab12cd34`" in teacher.ours


def test_one_seed_has_no_interval_to_decide():
    [table] = build_tables([full_record("kd", 0, 73.33)])
    kd = by_label(reproduction_rows(table))["KD"]
    assert kd.inside is None and kd.why_not == "1 seed: no CI"


def test_variant_entries_each_get_a_line():
    records = full_records() + [full_record("kd", s, 74.0 + s, label="teacher file ab12cd34") for s in range(3)]
    [table] = build_tables(records)
    kd_lines = [row for row in reproduction_rows(table) if row.claim.label == "KD"]
    assert sorted(row.ours for row in kd_lines) == ["kd", "kd [teacher file ab12cd34]"]


def test_reproduction_csv_has_raw_numbers_and_blank_unknowns():
    [table] = build_tables(full_records())
    files = leaderboard_files([table])
    rows = list(csv.DictReader(io.StringIO(files[f"{KEY}-reproduction.csv"].decode())))
    kd = next(r for r in rows if r["label"] == "KD")
    assert float(kd["paper_value"]) == 73.33 and float(kd["mean"]) == pytest.approx(75.2)
    assert kd["inside"] == "False" and kd["n"] == "3"
    crd = next(r for r in rows if r["label"] == "CRD")
    assert crd["mean"] == "" and crd["inside"] == "" and float(crd["paper_value"]) == 75.51


def test_protocols_without_claims_have_no_reproduction_section():
    [table] = build_tables([record("baseline", 0, 70.0)])  # classification-mini: no published table
    assert reproduction_rows(table) == []
    assert "Reproduction" not in render_markdown([table])
    assert not any(name.endswith("-reproduction.csv") for name in leaderboard_files([table]))
