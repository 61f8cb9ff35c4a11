"""The TAKD assistant-size sweep: runs every assistant on every seed next to the references,
writes its table and plot, and refuses a protocol without a sweep or with a bad assistant."""

import csv
import dataclasses

import pytest

from bench.errors import ConfigError
from bench.runner import RunOptions
from bench.sweep import build_sweep_table, run_assistant_sweep
from leaderboard.sweep import render_sweep_markdown, write_sweep


@pytest.fixture
def sweep_protocol(tiny_protocol):
    return dataclasses.replace(tiny_protocol, seeds=(0, 1))


def test_sweep_runs_each_assistant_and_writes_table_and_plot(sweep_protocol, tmp_path):
    results, sweeps = tmp_path / "results", tmp_path / "sweeps"
    table = run_assistant_sweep(sweep_protocol, results, sweeps, RunOptions(), jobs=1)
    assert [row.assistant for row in table.rows] == ["tinyresnet_12", "tinyresnet_16"]  # by size
    assert all(row.student.n == 2 and row.diff_kd.n == 2 for row in table.rows)
    assert table.rows[0].assistant_params < table.rows[1].assistant_params
    assert [r.is_protocol_default for r in table.rows] == [False, True]
    assert set(table.references) == {"baseline", "kd"}
    assert len(list((sweeps / "tinyresnet_12").rglob("seed-*.json"))) == 2
    assert len(list(results.rglob("seed-*.json"))) == 4  # baseline and kd, two seeds each
    paths = write_sweep(table, tmp_path / "out")
    assert sorted(p.suffix for p in paths) == [".csv", ".md", ".png", ".svg"]
    rows = list(csv.DictReader(paths[1].open()))
    assert [r["assistant"] for r in rows] == ["tinyresnet_12", "tinyresnet_16"]
    assert float(rows[1]["student_mean"]) == pytest.approx(table.rows[1].student.mean)
    text = render_sweep_markdown(table)
    assert "| tinyresnet_16 * |" in text and "reference `kd`" in text
    # a second call finds everything stored and runs nothing
    again = build_sweep_table(sweep_protocol, results, sweeps)
    assert again == table


def test_sweep_needs_a_protocol_with_assistant_sizes(tiny_protocol, tmp_path):
    plain = dataclasses.replace(tiny_protocol, assistant_sweep=())
    with pytest.raises(ConfigError, match="has no 'assistant_sweep'; protocols with one: .*classification-gap"):
        run_assistant_sweep(plain, tmp_path / "r", tmp_path / "s", RunOptions())


def test_sweep_with_an_assistant_outside_the_gap_trains_nothing(tiny_protocol, tmp_path):
    bad = dataclasses.replace(tiny_protocol, assistant_sweep=("tinyresnet_12", "tinyresnet_48"))
    with pytest.raises(ConfigError, match="assistant tinyresnet_48 .*is not between"):
        run_assistant_sweep(bad, tmp_path / "r", tmp_path / "s", RunOptions())
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()
