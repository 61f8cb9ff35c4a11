import dataclasses

from leaderboard.plots import Point, pareto_front, write_plots
from leaderboard.render import build_tables

from test_render import sample_records  # noqa: E402  (same folder)


def test_pareto_front_by_hand():
    a, b, c, d = Point("a", 1.0, 60.0), Point("b", 2.0, 70.0), Point("c", 3.0, 65.0), Point("d", 4.0, 80.0)
    tie = Point("tie", 2.0, 70.0)
    assert pareto_front([a, b, c, d]) == [a, b, d]  # c is beaten by b: cheaper and better
    assert set(pareto_front([b, tie])) == {b, tie}  # equal points do not dominate each other


def test_plots_are_written(tmp_path):
    [table] = build_tables(sample_records())
    paths = write_plots(table, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"classification-mini@v1-top1-vs-{axis}.{ext}"
                           for axis in ("gmacs", "latency") for ext in ("png", "svg"))
    assert all(p.stat().st_size > 1000 for p in paths)


def test_rendering_twice_gives_the_same_bytes(tmp_path):
    [table] = build_tables(sample_records())
    first = {p.name: p.read_bytes() for p in write_plots(table, tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in write_plots(table, tmp_path / "b")}
    assert first == second


def test_ensemble_accuracy_is_a_reference_line():
    from leaderboard.plots import reference_lines
    from leaderboard.render import Ensemble

    table = dataclasses.replace(build_tables(sample_records())[0],
                                ensembles=(Ensemble("a + b + c", 81.0), Ensemble("d + e", None)))
    assert reference_lines(table) == [("ensemble: a + b + c", 81.0)]
