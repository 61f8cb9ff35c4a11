"""The TAKD sweep table: Holm-adjusted comparisons over the sweep's family, "± –" for one seed, and
its files written through the manifest (a file it did not write is refused, never replaced)."""

import csv
import io
from types import SimpleNamespace

import pytest

from bench.stats import holm, summarize
from bench.sweep import SweepRow, SweepTable
from leaderboard.manifest import OutputConflictError
from leaderboard.sweep import render_sweep_csv, render_sweep_markdown, sweep_file_names, write_sweep

PROTOCOL = SimpleNamespace(key="gap@v1", spec_hash="c" * 64, primary_metric="top1", student="s",
                           teacher=SimpleNamespace(model="t"))


def sweep_table():
    """Two assistants: a16 clearly above kd and baseline on 3 seeds; a8 one seed only."""
    a16 = SweepRow("a16", 16_000, 0.01, 60.0, summarize([75.0, 75.5, 76.0]), summarize([5.0, 5.2, 5.4]),
                   summarize([10.0, 10.1, 10.3]), 100.0, True)
    a8 = SweepRow("a8", 8_000, 0.005, 55.0, summarize([71.0]), summarize([1.0]), summarize([6.0]), 90.0, False)
    return SweepTable(PROTOCOL, (a8, a16), {"baseline": summarize([65.0, 65.5, 65.7]),
                                            "kd": summarize([70.0, 70.3, 70.6])})


def test_sweep_markdown_states_m_and_the_holm_verdicts():
    text = render_sweep_markdown(sweep_table())
    assert "the m = 2 paired t tests of this table" in text  # a8's one-seed comparisons are not tests
    assert "| a8 | 8,000 | 0.0050 | 55.00 | 71.00 ± – (1) | +1.00 (1 seed) | not tested (1 paired seed) |" in text
    a16 = next(line for line in text.splitlines() if line.startswith("| a16 *"))
    assert a16.count("separated (+)") == 2 and "(97.50%)" in a16 and "(95.00%)" in a16
    assert "Best" not in text and "beats" not in text


def test_sweep_csv_carries_the_adjusted_numbers():
    table = sweep_table()
    rows = {r["assistant"]: r for r in csv.DictReader(io.StringIO(render_sweep_csv(table)))}
    expected = holm({"kd": table.rows[1].diff_kd, "baseline": table.rows[1].diff_baseline})
    assert rows["a16"]["comparisons"] == "2"
    assert float(rows["a16"]["diff_kd_holm_low"]) == pytest.approx(expected["kd"].low)
    assert float(rows["a16"]["diff_baseline_p_holm"]) == pytest.approx(expected["baseline"].p_holm)
    assert rows["a8"]["student_std"] == "" and rows["a8"]["diff_kd_verdict"] == "not tested (1 paired seed)"


def test_write_sweep_refuses_a_file_it_did_not_write(tmp_path):
    md = tmp_path / sweep_file_names("gap@v1")[0]
    md.write_text("my notes")
    with pytest.raises(OutputConflictError, match="gap@v1-takd-assistant-sweep.md"):
        write_sweep(sweep_table(), tmp_path)
    assert md.read_text() == "my notes" and sorted(p.name for p in tmp_path.iterdir()) == [md.name]
    paths = write_sweep(sweep_table(), tmp_path, overwrite=True)
    assert sorted(p.name for p in paths) == sorted(sweep_file_names("gap@v1"))
    write_sweep(sweep_table(), tmp_path)  # its own files now: re-rendered without a flag
