"""Tests of the CI accuracy-regression comparison in bench.regress."""

import pytest

from bench.errors import DataError
from bench.regress import compare, format_rows

KEY = "classification-mini@v1"


def record(method, seed, top1, protocol_hash="a" * 64):
    """The parts of a result record that the comparison reads."""
    return {"protocol": {"key": KEY, "hash": protocol_hash}, "method": {"name": method}, "seed": seed,
            "metrics": {"top1": top1, "top5": top1 + 20.0}, "primary_metric": "top1"}


def reference():
    # baseline: three seeds that agree (std 0, tolerance is the floor 1.0);
    # kd: top1 70/72/74 (mean 72, std 2, tolerance 3 * 2 = 6).
    return ([record("baseline", s, 70.0) for s in range(3)]
            + [record("kd", s, v) for s, v in enumerate([70.0, 72.0, 74.0])])


def by_key(rows):
    return {(r.method, r.metric): r for r in rows}


def test_identical_records_pass():
    rows = compare(reference(), reference())
    assert [(r.method, r.metric) for r in rows] == [("baseline", "top1"), ("baseline", "top5"),
                                                     ("kd", "top1"), ("kd", "top5")]
    assert all(r.status == "ok" and not r.failed for r in rows)
    kd = by_key(rows)["kd", "top1"]
    assert (kd.reference_mean, kd.current_mean, kd.tolerance) == (72.0, 72.0, 6.0)
    assert by_key(rows)["baseline", "top1"].tolerance == 1.0


def test_degraded_record_fails_and_is_named():
    current = reference()
    current[0] = record("baseline", 0, 60.0)  # top1 lowered by 10 on one seed: mean 66.67 < 70 - 1
    rows = by_key(compare(current, reference()))
    assert rows["baseline", "top1"].status == "regressed" and rows["baseline", "top1"].failed
    assert rows["baseline", "top1"].current_mean == pytest.approx(200.0 / 3)
    assert rows["kd", "top1"].status == "ok"
    text = format_rows(rows.values())
    failing = [line.split()[:3] for line in text.splitlines() if "regressed" in line]
    assert failing == [[KEY, "baseline", "top1"], [KEY, "baseline", "top5"]]  # top5 = top1 + 20 dropped too


def test_drops_within_tolerance_and_improvements_pass():
    current = ([record("baseline", s, 69.2) for s in range(3)]  # 0.8 below, floor is 1.0
               + [record("kd", s, v) for s, v in enumerate([66.5, 67.0, 67.5])]  # 5 below, tolerance 6
               + [record("new-method", 0, 1.0)])  # not in the reference: not checked
    rows = compare(current, reference())
    assert all(r.status == "ok" for r in rows)
    assert {r.method for r in rows} == {"baseline", "kd"}
    assert all(r.status == "ok" for r in compare([record("baseline", 0, 99.0)], [record("baseline", 0, 70.0)]))


def test_tolerance_parameters():
    current = [record("baseline", s, 69.2) for s in range(3)]
    rows = by_key(compare(current, reference(), floor=0.5))
    assert rows["baseline", "top1"].status == "regressed"
    rows = by_key(compare(current + reference()[3:], reference(), k=1.0))  # kd tolerance 2
    assert rows["kd", "top1"].status == "ok"


def test_missing_method_fails():
    current = [r for r in reference() if r["method"]["name"] != "kd"]
    rows = by_key(compare(current, reference()))
    assert rows["kd", "top1"].status == "missing" and rows["kd", "top1"].failed
    assert rows["baseline", "top1"].status == "ok"
    assert "missing" in format_rows(rows.values())


def test_changed_protocol_hash_fails():
    current = [record(r["method"]["name"], r["seed"], r["metrics"]["top1"], protocol_hash="b" * 64)
               for r in reference()]
    rows = compare(current, reference())
    assert rows and all(r.status == "protocol changed" and r.failed for r in rows)


def test_reference_with_two_hashes_is_an_error():
    with pytest.raises(DataError, match=KEY):
        compare([], reference() + [record("baseline", 9, 70.0, protocol_hash="b" * 64)])


def test_format_rows_aligns_columns():
    text = format_rows(compare(reference()[:3], reference()))
    lines = text.splitlines()
    assert lines[0].split() == ["protocol", "method", "metric", "reference", "current", "tolerance", "status"]
    assert set(lines[1]) <= {"-", " "}
    kd_line = next(line for line in lines if " kd " in line)
    assert kd_line.split()[3:] == ["72.00", "-", "6.00", "missing"]
    status_column = lines[0].index("status")
    assert [line[status_column:] for line in lines[2:]] == ["ok", "ok", "missing", "missing"]
