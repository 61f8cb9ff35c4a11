import dataclasses

import math

from leaderboard.plots import Point, pareto_front, plot_files, table_points
from leaderboard.render import build_tables

from test_render import record, sample_records  # noqa: E402  (same folder)


def test_pareto_front_by_hand():
    a, b, c, d = Point("a", 1.0, 60.0), Point("b", 2.0, 70.0), Point("c", 3.0, 65.0), Point("d", 4.0, 80.0)
    tie = Point("tie", 2.0, 70.0)
    assert pareto_front([a, b, c, d]) == [a, b, d]  # c is beaten by b: cheaper and better
    assert set(pareto_front([b, tie])) == {b, tie}  # equal points do not dominate each other


def test_plots_are_rendered(tmp_path):
    [table] = build_tables(sample_records())
    files = plot_files(table)
    assert sorted(files) == sorted(f"classification-mini@v1-top1-vs-{axis}.{ext}"
                                   for axis in ("gmacs", "latency") for ext in ("png", "svg"))
    assert all(len(data) > 1000 for data in files.values())


def test_rendering_twice_gives_the_same_bytes():
    [table] = build_tables(sample_records())
    assert plot_files(table) == plot_files(table)


def test_one_seed_and_non_finite_rows_do_not_break_the_plot():
    records = sample_records() + [record("crd", 0, math.inf), record("at", 0, 72.0)]
    [table] = build_tables(records)
    points = {p.label: p for p in table_points(table, "gmacs")}
    assert "crd" not in points and points["at"].spread == 0.0  # inf left out; one seed: no error bar
    assert plot_files(table)


def test_ensemble_accuracy_is_a_reference_line():
    from leaderboard.plots import reference_lines
    from leaderboard.render import Ensemble

    table = dataclasses.replace(build_tables(sample_records())[0],
                                ensembles=(Ensemble("a + b + c", 81.0), Ensemble("d + e", None)))
    assert reference_lines(table) == [("ensemble: a + b + c", 81.0)]
