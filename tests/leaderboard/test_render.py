"""Tests of leaderboard.render with hand-built records whose summaries are easy to check by hand,
of the Holm-adjusted comparisons it shows, and of the output manifest that keeps `kdbench leaderboard`
(and every other renderer) from overwriting or deleting files it did not write (issue 12 item 2)."""

import csv
import hashlib
import io
import json
import math
import shutil

import pytest

import bench.cli
from bench.cli import main
from bench.errors import ConfigError, DataError
from bench.results import ResultsStore
from bench.stats import ALPHA, holm, interval, paired_difference
from leaderboard.manifest import MANIFEST_NAME, OutputConflictError, write_outputs
from leaderboard.render import build_tables, render_csv, render_markdown, verdict, write_leaderboard

HASH_V1, HASH_V2 = "a" * 64, "b" * 64
TEACHER = {"model": "resnet_t", "sha256": "f" * 64, "source": "zoo", "metrics": {"top1": 80.1},
           "train_seconds": 100.0, "efficiency": {"gmacs": 0.5, "latency_ms": 2.0}}


def record(method, seed, top1, *, version=1, protocol_hash=HASH_V1, status="verified", train_seconds=10.0,
           latency_ms=1.0, label="", data="d" * 64):
    """A valid schema-2 result record; top5 is always top1 + 20. A ``label`` makes it a non-default variant."""
    entry = hashlib.sha256(json.dumps([protocol_hash, method, label, data]).encode()).hexdigest()
    return {
        "schema": 2,
        "protocol": {"name": "classification-mini", "key": f"classification-mini@v{version}",
                     "version": version, "hash": protocol_hash, "task": "classification", "tier": "mini"},
        "method": {"name": method, "hparams": {}},
        "identity": {"protocol_hash": protocol_hash, "method": method, "hparams": {}, "teachers": [],
                     "data": data, "seed": seed, "entry": entry, "default": not label, "label": label},
        "seed": seed,
        "status": status,
        "metrics": {"top1": top1, "top5": top1 + 20.0},
        "primary_metric": "top1",
        "teacher": None if method == "baseline" else TEACHER,
        "efficiency": {"student_params": 12345, "extra_params": 0 if method != "fitnet" else 678,
                       "gmacs": 0.0125, "latency_ms": latency_ms, "throughput_per_s": 1500.0},
        "cost": {"train_seconds": train_seconds, "teacher_forward_seconds": 0.5, "teacher_forwards": 1000,
                 "teacher_output_cache": True, "peak_memory_mb": 300.0},
        "provenance": {},
    }


def sample_records():
    """baseline top1 70/71/72 (mean 71, std 1); kd 71/73/75 (mean 73, std 2; paired diffs 1, 2, 3);
    fitnet 74/74 on seeds 0 and 1, one of them claimed (paired diffs 4, 3)."""
    return [
        record("baseline", 0, 70.0, train_seconds=10.0), record("baseline", 1, 71.0, train_seconds=12.0),
        record("baseline", 2, 72.0, train_seconds=14.0),
        record("kd", 0, 71.0, latency_ms=1.0), record("kd", 1, 73.0, latency_ms=2.0),
        record("kd", 2, 75.0, latency_ms=3.0),
        record("fitnet", 0, 74.0, status="claimed"), record("fitnet", 1, 74.0),
    ]


def test_rows_summaries_and_paired_difference():
    [table] = build_tables(sample_records())
    assert table.protocol_key == "classification-mini@v1" and table.primary_metric == "top1"
    assert table.metrics == ("top1", "top5")
    assert [row.method for row in table.rows] == ["fitnet", "kd", "baseline"]  # by top1 mean, descending
    fitnet, kd, baseline = table.rows

    assert (kd.n, kd.metrics["top1"].mean, kd.metrics["top1"].std) == (3, 73.0, 2.0)
    assert kd.metrics["top5"].mean == 93.0
    # diffs 1, 2, 3: mean 2, std 1, 95% CI 2 -+ 4.303 / sqrt(3)
    assert (kd.diff.mean, kd.diff.std, kd.diff.n) == (2.0, 1.0, 3)
    assert kd.diff.ci_low == pytest.approx(-0.4841, abs=1e-4)
    assert kd.diff.ci_high == pytest.approx(4.4841, abs=1e-4)
    # diffs 4, 3 on the two shared seeds: mean 3.5, CI 3.5 -+ 12.706 * 0.7071 / sqrt(2)
    assert (fitnet.diff.mean, fitnet.diff.n) == (3.5, 2)
    assert fitnet.diff.ci_low == pytest.approx(3.5 - 6.353, abs=1e-3)

    assert baseline.diff is None
    assert baseline.train_seconds == 12.0
    assert (fitnet.student_params, fitnet.extra_params) == (12345, 678)
    assert [(t.model, t.metric) for t in table.teachers] == [("resnet_t", 80.1)]


def test_claimed_record_marks_row_claimed():
    rows = {row.method: row for row in build_tables(sample_records())[0].rows}
    assert {m: r.status for m, r in rows.items()} == {"fitnet": "claimed", "kd": "verified", "baseline": "verified"}
    assert rows["fitnet"].status_text == "claimed (1 of 2 seeds verified)"
    assert rows["kd"].status_text == "verified"


def test_record_without_a_status_counts_as_claimed():
    rec = record("kd", 0, 70.0)
    del rec["status"]
    assert build_tables([rec])[0].rows[0].status == "claimed"


def test_two_protocol_versions_give_two_tables():
    records = sample_records() + [record("baseline", 0, 60.0, version=2, protocol_hash=HASH_V2)]
    tables = build_tables(records)
    assert [t.protocol_key for t in tables] == ["classification-mini@v1", "classification-mini@v2"]
    assert [row.method for row in tables[1].rows] == ["baseline"]
    text = render_markdown(tables)
    assert "## classification-mini@v1" in text and "## classification-mini@v2" in text
    assert f"`{HASH_V2[:12]}`" in text


def test_two_hashes_for_one_key_is_an_error_naming_the_key():
    records = sample_records() + [record("baseline", 5, 60.0, protocol_hash=HASH_V2)]
    with pytest.raises(DataError, match="classification-mini@v1"):
        build_tables(records)


def test_duplicate_seed_is_an_error():
    with pytest.raises(DataError, match="seed 0"):
        build_tables([record("kd", 0, 70.0), record("kd", 0, 71.0)])


def test_no_baseline_leaves_difference_blank():
    [table] = build_tables([record("kd", 0, 70.0), record("kd", 1, 72.0)])
    assert table.rows[0].diff is None
    row = next(csv.DictReader(io.StringIO(render_csv(table))))
    assert row["diff_mean"] == row["diff_ci_low"] == ""


def test_markdown_formatting():
    text = render_markdown(build_tables(sample_records()))
    assert ("Protocol hash `aaaaaaaaaaaa` · tier mini · teacher resnet_t `ffffffff` (top1 80.10), "
            "0.5000 GMACs, 2.000 ms") in text
    assert ("| kd | resnet_t | verified | 3 | 73.00 ± 2.00 (3) | 93.00 | 12,345 | 0 | 0.0125 | 2.000 "
            "| 1,500 | 10.0 | 110 (teacher 100 + student 10) |\n") in text
    assert ("| baseline | - | verified | 3 | 71.00 ± 1.00 (3) | 91.00 | 12,345 | 0 | 0.0125 | 1.000 | 1,500 "
            "| 12.0 | 12 |") in text
    assert "| fitnet | resnet_t | claimed (1 of 2 seeds verified) | 2 | 74.00 ± 0.00 (2) | 94.00 |" in text
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert header.count("|") == next(line for line in text.splitlines() if line.startswith("| :---")).count("|")


def test_comparisons_show_nominal_and_holm_intervals_paired_seeds_and_verdicts():
    text = render_markdown(build_tables(sample_records()))
    # three tests: kd and fitnet against baseline, fitnet against kd
    assert "m = 3 paired t tests in this table, Holm-adjusted to a family-wise 95% level" in text
    assert ("| Method | Compared with | Δ top1 | Paired seeds | Nominal 95% CI | Holm-adjusted CI (level) | p | "
            "Holm p | Verdict |") in text
    # kd - baseline = 1, 2, 3: t = 2 sqrt 3 on 2 df, p = 1 - t / sqrt(2 + t^2) = 0.0742 ranks first; its
    # interval at 0.05 / 3 (t_{1 - 0.05/6, 2} = 7.649) contains 0, so Holm stops: every level is 0.05 / 3.
    # Holm p = 3 x 0.0742; detectable: (7.649 + t_{0.8, 2} = 1.061) / sqrt 3 = 5.03 points.
    assert ("| kd | baseline | +2.00 | 3 | [-0.48, +4.48] | [-2.42, +6.42] (98.33%) | 0.074 | 0.223 | "
            "not separated (power: about 5.0 points) |") in text
    # fitnet - kd = 3, 1 (seeds 0, 1): t = 2 on 1 df, p = 1 - 2 atan(2) / pi = 0.295
    assert "| fitnet | kd | +2.00 | 2 | [-10.71, +14.71] | " in text and "| 0.295 | 0.295 | not separated" in text
    assert "beats" not in text and "no effect" not in text


def test_a_separated_comparison_and_the_verdict_wording():
    records = [record("baseline", s, 70.0 + 0.1 * s) for s in range(5)]
    records += [record("kd", s, 75.0 + 0.1 * s + 0.05 * (s % 2)) for s in range(5)]  # about +5, tiny spread
    records += [record("at", s, 60.0 - 0.2 * s) for s in range(5)]  # about -10.3
    [table] = build_tables(records)
    rows = {row.method: row for row in table.rows}
    assert table.comparisons == 3  # kd and at vs baseline, at vs kd
    assert verdict(rows["kd"].vs_baseline) == "separated (+)"
    assert verdict(rows["at"].vs_baseline) == "separated (\u2212)"
    assert rows["kd"].vs_kd is None and rows["baseline"].vs_baseline is None  # nothing compared with itself
    text = render_markdown([table])
    assert "| separated (+) |" in text and "| separated (\u2212) |" in text


def test_one_seed_shows_a_dash_and_is_not_tested():
    records = [record("baseline", s, 70.0 + s) for s in range(3)] + [record("kd", 0, 72.0)]
    [table] = build_tables(records)
    text = render_markdown([table])
    assert "| kd | resnet_t | verified | 1 | 72.00 ± – (1) |" in text and "± 0.00 (1)" not in text
    kd = next(row for row in table.rows if row.method == "kd")
    assert not kd.vs_baseline.tested and table.comparisons == 0
    assert "| kd | baseline | +2.00 | 1 |  |  |  |  | not tested (1 paired seed) |" in text
    assert "m = 0 paired t tests" in text


def test_an_infinite_metric_is_flagged_not_a_crash():
    records = sample_records() + [record("crd", s, v) for s, v in ((0, math.inf), (1, 70.0))]
    [table] = build_tables(records)
    assert table.rows[-1].method == "crd"  # non-finite means rank last
    text = render_markdown([table])
    assert "| inf (non-finite in 1 of 2 seeds) |" in text
    assert "| crd | baseline | +inf | 2 |  |  |  |  | not tested (non-finite metric) |" in text
    assert table.comparisons == 3  # the untestable comparison is not counted
    row = next(r for r in csv.DictReader(io.StringIO(render_csv(table))) if r["method"] == "crd")
    assert row["top1_mean"] == "inf" and row["diff_p"] == "" and row["diff_verdict"] == "not tested (non-finite metric)"


def test_a_non_default_variant_is_its_own_row_labelled_with_its_settings():
    records = sample_records() + [record("kd", s, 80.0 + s, label="T=2, alpha=0.5") for s in range(3)]
    [table] = build_tables(records)
    rows = {row.name: row for row in table.rows}
    assert set(rows) == {"baseline", "kd", "kd [T=2, alpha=0.5]", "fitnet"}
    variant = rows["kd [T=2, alpha=0.5]"]
    assert (variant.default, variant.n, variant.metrics["top1"].mean) == (False, 3, 81.0)
    assert rows["kd"].metrics["top1"].mean == 73.0  # the default kd row is not mixed with the variant
    assert variant.vs_kd.diff.mean == pytest.approx(8.0)  # compared with the default kd entry
    assert table.comparisons == 5
    text = render_markdown([table])
    assert "| kd [T=2, alpha=0.5] | resnet_t | verified | 3 | 81.00 ± 1.00 (3) |" in text
    csv_row = next(r for r in csv.DictReader(io.StringIO(render_csv(table))) if r["label"])
    assert (csv_row["method"], csv_row["default"], csv_row["label"]) == ("kd", "False", "T=2, alpha=0.5")


def test_records_without_identity_are_grouped_by_method():
    records = sample_records()
    for rec in records:
        del rec["identity"]
    [table] = build_tables(records)
    assert sorted(row.entry for row in table.rows) == ["baseline", "fitnet", "kd"]


def test_two_default_baselines_are_an_error():
    records = sample_records() + [record("baseline", 5, 70.0, data="e" * 64)]
    with pytest.raises(DataError, match="2 default entries of 'baseline'"):
        build_tables(records)


def test_holm_columns_of_the_csv_match_bench_stats():
    [table] = build_tables(sample_records())
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO(render_csv(table)))}
    kd = rows["kd"]
    family = {("kd", "b"): paired_difference({0: 71.0, 1: 73.0, 2: 75.0}, {0: 70.0, 1: 71.0, 2: 72.0}),
              ("fitnet", "b"): paired_difference({0: 74.0, 1: 74.0}, {0: 70.0, 1: 71.0}),
              ("fitnet", "kd"): paired_difference({0: 74.0, 1: 74.0}, {0: 71.0, 1: 73.0})}
    expected = holm(family)[("kd", "b")]
    assert float(kd["comparisons"]) == 3 and float(kd["diff_n"]) == 3
    assert float(kd["diff_holm_level"]) == pytest.approx(ALPHA / 3)
    assert float(kd["diff_holm_low"]) == pytest.approx(interval(2.0, 1.0, 3, ALPHA / 3)[0])
    assert float(kd["diff_p_holm"]) == pytest.approx(expected.p_holm)
    assert float(kd["diff_mdd"]) == pytest.approx(expected.mdd)


def test_empty_leaderboard():
    assert "No results yet." in render_markdown(build_tables([]))


def test_csv_numbers_parse_back_as_floats():
    [table] = build_tables(sample_records())
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO(render_csv(table)))}
    kd = rows["kd"]
    assert kd["protocol"] == "classification-mini@v1" and kd["status"] == "verified"
    numeric = ["n", "top1_mean", "top1_std", "top5_mean", "top5_std", "diff_mean", "diff_ci_low",
               "diff_ci_high", "student_params", "extra_params", "gmacs", "latency_ms", "throughput_per_s",
               "train_seconds"]
    values = {name: float(kd[name]) for name in numeric}
    assert values["top1_mean"] == 73.0 and values["top1_std"] == 2.0 and values["n"] == 3.0
    assert values["diff_ci_low"] == pytest.approx(-0.4841, abs=1e-4)
    assert values["latency_ms"] == 2.0 and values["gmacs"] == 0.0125  # latency: mean over the records
    assert rows["baseline"]["diff_mean"] == ""
    assert rows["fitnet"]["status"] == "claimed"


def test_write_leaderboard(tmp_path):
    store = ResultsStore(tmp_path / "results")
    for rec in sample_records() + [record("baseline", 0, 60.0, version=2, protocol_hash=HASH_V2)]:
        store.write(rec)
    out = tmp_path / "board"
    paths = write_leaderboard(store.root, out)
    assert [p.name for p in paths][:3] == ["README.md", "classification-mini@v1.csv", "classification-mini@v2.csv"]
    assert {p.suffix for p in paths[3:]} == {".png", ".svg"}
    # no temporary files left; the manifest lists exactly what was written
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST_NAME, *(p.name for p in paths)])
    assert sorted(json.loads((out / MANIFEST_NAME).read_text())["files"]) == sorted(p.name for p in paths)
    assert "## classification-mini@v2" in (out / "README.md").read_text()
    assert (out / "classification-mini@v1.csv").read_text() == render_csv(build_tables(store.records())[0])
    # records of v1 replaced: its table and plots go, files the leaderboard did not write stay
    (out / "notes.txt").write_text("mine")
    (out / "classification-mini@v0.csv").write_text("someone else's table")
    shutil.rmtree(store.root / "classification-mini@v1")
    write_leaderboard(store.root, out)
    assert not list(out.glob("classification-mini@v1*"))
    assert (out / "classification-mini@v2.csv").is_file() and (out / "notes.txt").read_text() == "mine"
    assert (out / "classification-mini@v0.csv").read_text() == "someone else's table"


# ----------------------------------------------------------------- the output manifest (issue 12 item 2)

def test_a_user_readme_is_refused_before_anything_is_written(tmp_path):
    (tmp_path / "README.md").write_text("my notes")
    files = {"README.md": b"table", "a@v1.csv": b"x"}
    with pytest.raises(OutputConflictError, match=r"README\.md already exists .*--overwrite"):
        write_outputs(tmp_path, files, "leaderboard")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]  # nothing written, no manifest
    assert (tmp_path / "README.md").read_text() == "my notes"
    write_outputs(tmp_path, files, "leaderboard", overwrite=True)  # asked explicitly: replaced, and now ours
    assert (tmp_path / "README.md").read_text() == "table"
    write_outputs(tmp_path, {"README.md": b"table 2"}, "leaderboard")  # ours: no flag needed
    assert not (tmp_path / "a@v1.csv").exists()  # ours and no longer written: removed


def test_an_edited_output_is_treated_as_the_users(tmp_path):
    write_outputs(tmp_path, {"README.md": b"table", "a@v1.csv": b"x"}, "leaderboard")
    (tmp_path / "README.md").write_text("table, with my comments")
    with pytest.raises(OutputConflictError, match="README.md"):
        write_outputs(tmp_path, {"README.md": b"table 2"}, "leaderboard")
    (tmp_path / "a@v1.csv").write_text("edited")
    write_outputs(tmp_path, {"b@v1.csv": b"y"}, "leaderboard")  # a@v1.csv is stale but edited: kept
    assert (tmp_path / "a@v1.csv").read_text() == "edited"
    assert "a@v1.csv" not in json.loads((tmp_path / MANIFEST_NAME).read_text())["files"]


def test_each_writer_removes_only_its_own_stale_files(tmp_path):
    write_outputs(tmp_path, {"k@v1-takd-assistant-sweep.md": b"sweep"}, "sweep k@v1")
    write_outputs(tmp_path, {"README.md": b"table", "k@v1.csv": b"x"}, "leaderboard")
    write_outputs(tmp_path, {"README.md": b"table"}, "leaderboard")
    assert not (tmp_path / "k@v1.csv").exists()
    assert (tmp_path / "k@v1-takd-assistant-sweep.md").read_bytes() == b"sweep"


def test_a_tampered_manifest_cannot_delete_outside_the_folder(tmp_path):
    out = tmp_path / "out"
    write_outputs(out, {"README.md": b"table"}, "leaderboard")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    digest = hashlib.sha256(b"keep me").hexdigest()
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    manifest["files"]["../victim.txt"] = {"writer": "leaderboard", "sha256": [digest]}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="is not a KDBench output manifest"):
        write_outputs(out, {"README.md": b"table"}, "leaderboard")
    assert victim.read_text() == "keep me"


@pytest.fixture
def user_results(tmp_path):
    store = ResultsStore(tmp_path / "results")
    for rec in sample_records():
        store.write(rec)
    return store.root


@pytest.fixture
def published_tables(tmp_path, monkeypatch):
    """A stand-in for leaderboard/tables holding published files (the real one is never touched)."""
    tables = tmp_path / "published" / "tables"
    tables.mkdir(parents=True)
    for name in ("README.md", "classification-mini@v1.csv", "classification-mini@v1-top1-vs-gmacs.png"):
        (tables / name).write_text(f"published {name}")
    monkeypatch.setattr(bench.cli, "PUBLISHED_TABLES", tables)
    return tables


def _contents(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_leaderboard_on_user_results_leaves_the_published_tables_untouched(user_results, published_tables):
    # before: without --out it wrote into leaderboard/tables, replaced the README and deleted the CSV and plots
    before = _contents(published_tables)
    assert main(["leaderboard", "--results", str(user_results)]) == 0
    assert _contents(published_tables) == before
    assert (user_results / "leaderboard" / "classification-mini@v1.csv").is_file()  # the default output
    with pytest.raises(ConfigError, match="written only with --publish"):  # a folder inside it too
        bench.cli.not_published(published_tables / "sub")
    assert main(["leaderboard", "--results", str(user_results), "--out", str(published_tables)]) == 2
    assert _contents(published_tables) == before


def test_leaderboard_does_not_overwrite_a_user_readme(user_results, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    assert main(["leaderboard", "--results", str(user_results), "--out", str(out)]) == 2
    assert "README.md" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["README.md"] and (out / "README.md").read_text() == "my notes"
    assert main(["leaderboard", "--results", str(user_results), "--out", str(out), "--overwrite"]) == 0
    assert "## classification-mini@v1" in (out / "README.md").read_text()


def test_leaderboard_does_not_delete_a_csv_it_did_not_write(user_results, tmp_path):
    out = tmp_path / "mine"
    assert main(["leaderboard", "--results", str(user_results), "--out", str(out)]) == 0
    (out / "segmentation-mini@v1.csv").write_text("a user's table")  # a generated-looking name
    assert main(["leaderboard", "--results", str(user_results), "--out", str(out)]) == 0  # re-render
    assert (out / "segmentation-mini@v1.csv").read_text() == "a user's table"


def test_suite_and_sweep_refuse_a_foreign_file_before_running(tmp_path, monkeypatch, capsys):
    def must_not_run(*args, **kwargs):
        raise AssertionError("ran before checking the output folder")

    monkeypatch.setattr("bench.suite.run_suite", must_not_run)
    monkeypatch.setattr("bench.sweep.run_assistant_sweep", must_not_run)
    out = tmp_path / "out"
    out.mkdir()
    (out / "classification-smoke@v2.csv").write_text("mine")
    (out / "classification-smoke@v2-takd-assistant-sweep.md").write_text("mine")
    assert main(["suite", "--tier", "smoke", "--results", str(tmp_path / "r"), "--out", str(out)]) == 2
    assert "classification-smoke@v2.csv" in capsys.readouterr().err
    assert main(["sweep", "--protocol", "classification-smoke", "--results", str(tmp_path / "r"),
                 "--sweeps", str(tmp_path / "s"), "--out", str(out)]) == 2
    assert "classification-smoke@v2-takd-assistant-sweep.md" in capsys.readouterr().err
    assert (out / "classification-smoke@v2.csv").read_text() == "mine"


def chain_record(seed, top1):
    rec = record("takd", seed, top1)
    rec["teaching"] = {"kind": "chain", "stages": [
        {"role": "teacher", **TEACHER}, {"role": "assistant", "model": "resnet_a", "sha256": "e" * 64,
                                         "train_seconds": 30.0, "metrics": {"top1": 75.0}}]}
    rec["cost"]["stages"] = [{"stage": "teacher", "model": "resnet_t", "train_seconds": 100.0},
                             {"stage": "assistant", "model": "resnet_a", "train_seconds": 30.0},
                             {"stage": "student", "model": "s", "train_seconds": 10.0}]
    return rec


def ensemble_record(seed, top1):
    rec = record("mt-avg", seed, top1)
    rec["teacher"] = None
    members = [{"role": "member", **TEACHER, "seed": 0}, {"role": "member", **TEACHER, "seed": 1}]
    rec["teaching"] = {"kind": "ensemble", "stages": members, "ensemble_metrics": {"top1": 82.5, "top5": 99.0}}
    rec["cost"]["stages"] = [{"stage": "member", "model": "resnet_t", "train_seconds": 100.0},
                             {"stage": "member", "model": "resnet_t", "train_seconds": 90.0},
                             {"stage": "student", "model": "s", "train_seconds": 10.0}]
    return rec


def test_chain_and_ensemble_rows_show_their_teachers_and_every_stage_cost():
    records = sample_records() + [chain_record(s, 74.0 + s) for s in range(3)] + [ensemble_record(0, 76.0)]
    [table] = build_tables(records)
    rows = {row.method: row for row in table.rows}
    assert rows["takd"].teachers == "resnet_t → resnet_a"
    assert rows["takd"].stage_seconds == {"teacher": 100.0, "assistant": 30.0, "student": 10.0}
    assert rows["takd"].total_train_seconds == 140.0
    assert rows["takd"].diff_kd.mean == pytest.approx(2.0)  # 74, 75, 76 against kd's 71, 73, 75
    assert rows["mt-avg"].teachers == "resnet_t + resnet_t (seed 1)"
    assert rows["mt-avg"].stage_seconds == {"member": 190.0, "student": 10.0}
    text = render_markdown([table])
    assert "Ensemble reference: resnet_t + resnet_t (seed 1) (top1 82.50)" in text
    assert "| 140 (teacher 100 + assistant 30 + student 10) |" in text
    csv_rows = {r["method"]: r for r in csv.DictReader(io.StringIO(render_csv(table)))}
    assert float(csv_rows["takd"]["assistant_train_seconds"]) == 30.0
    assert float(csv_rows["mt-avg"]["member_train_seconds"]) == 190.0
    assert float(csv_rows["takd"]["total_train_seconds"]) == 140.0
    assert csv_rows["takd"]["teachers"] == "resnet_t → resnet_a"
