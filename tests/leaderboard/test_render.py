"""Tests of leaderboard.render with hand-built records whose summaries are easy to check by hand."""

import csv
import io

import pytest

from bench.errors import DataError
from bench.results import ResultsStore
from leaderboard.render import build_tables, render_csv, render_markdown, write_leaderboard

HASH_V1, HASH_V2 = "a" * 64, "b" * 64
TEACHER = {"model": "resnet_t", "sha256": "f" * 64, "source": "zoo", "metrics": {"top1": 80.1},
           "train_seconds": 100.0, "efficiency": {"gmacs": 0.5, "latency_ms": 2.0}}


def record(method, seed, top1, *, version=1, protocol_hash=HASH_V1, status="verified", train_seconds=10.0,
           latency_ms=1.0):
    """A valid result record; top5 is always top1 + 20."""
    return {
        "schema": 1,
        "protocol": {"name": "classification-mini", "key": f"classification-mini@v{version}",
                     "version": version, "hash": protocol_hash, "task": "classification", "tier": "mini"},
        "method": {"name": method, "hparams": {}},
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
    statuses = {row.method: row.status for row in build_tables(sample_records())[0].rows}
    assert statuses == {"fitnet": "claimed", "kd": "verified", "baseline": "verified"}


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
    lines = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert lines["| kd"] == ("| kd | resnet_t | verified | 3 | 73.00 ± 2.00 (3) | 93.00 | +2.00 [-0.48, +4.48] "
                             "|  | 12,345 | 0 | 0.0125 | 2.000 | 1,500 | 10.0 | 110 (teacher 100 + student 10) |")
    assert ("| baseline | - | verified | 3 | 71.00 ± 1.00 (3) | 91.00 |  |  | 12,345 | 0 | 0.0125 | 1.000 | 1,500 "
            "| 12.0 | 12 |") in text
    # fitnet against kd, paired on seeds 0 and 1: differences 3 and 1
    assert "| fitnet | resnet_t | claimed | 2 | 74.00 ± 0.00 (2) | 94.00 | +3.50 " in text
    assert "| +2.00 [-10.71, +14.71] |" in lines["| fitnet"]
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    assert header.count("|") == next(line for line in text.splitlines() if line.startswith("| :---")).count("|")


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
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temporary files left
    assert "## classification-mini@v2" in (out / "README.md").read_text()
    assert (out / "classification-mini@v1.csv").read_text() == render_csv(build_tables(store.records())[0])
    # records of v1 replaced: its table and plots go, files the leaderboard did not write stay
    (out / "notes.txt").write_text("mine")
    import shutil

    shutil.rmtree(store.root / "classification-mini@v1")
    write_leaderboard(store.root, out)
    assert not list(out.glob("classification-mini@v1*"))
    assert (out / "classification-mini@v2.csv").is_file() and (out / "notes.txt").read_text() == "mine"


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
