"""Tests of the CI accuracy gate in bench.regress and ``kdbench regress`` (issue 11 §1, issue 12 item 3)."""

from __future__ import annotations

import copy
import math

import pytest

from bench import regress
from bench.cli import main
from bench.errors import DataError
from bench.identity import make_identity, protocol_spec
from bench.protocol import get_protocol
from bench.results import ResultsStore
from bench.runner import build_method

PROTOCOL = get_protocol("classification-smoke")


def record(method="kd", seed=0, top1=12.25, top5=51.0, protocol=PROTOCOL, hparams=None, data="d" * 64):
    """A complete schema-2 record of ``protocol`` with the code's default hyperparameters."""
    defaults = build_method(protocol, method).hparams
    hparams = {**defaults, **(hparams or {})}
    return {
        "schema": 2,
        "protocol": {"name": protocol.name, "key": protocol.key, "version": protocol.version,
                     "hash": protocol.spec_hash, "task": protocol.task, "tier": protocol.tier,
                     "spec": protocol_spec(protocol)},
        "method": {"name": method, "hparams": hparams},
        "identity": make_identity(protocol.spec_hash, method, hparams, defaults, [], data, seed),
        "seed": seed, "metrics": {"top1": top1, "top5": top5}, "primary_metric": "top1",
        "efficiency": {}, "cost": {"train_seconds": 1.5, "stages": [
            {"stage": "teacher", "model": "t", "seed": 0, "train_seconds": 4.0},
            {"stage": "student", "model": "s", "train_seconds": 1.5}]},
        "provenance": {},
    }


def reference():
    return [record(m, s, top1=10.0 + s + (m == "kd"), top5=50.0 + s) for m in ("baseline", "kd") for s in (0, 1)]


def failed(checks):
    return [(c.method, c.seed, c.metric, c.status) for c in checks if c.failed]


def test_identical_records_pass_and_the_summary_counts_checks():
    checks = regress.compare(reference(), reference())
    assert not failed(checks)
    assert len([c for c in checks if c.metric == regress.RECORD_CHECK]) == 4
    assert len([c for c in checks if c.metric != regress.RECORD_CHECK]) == 8
    assert "4 record checks" in regress.summary(checks)
    assert "8 value checks, 8 able to fail" in regress.summary(checks)
    assert "all 12 checks passed" in regress.summary(checks)


def test_exact_mode_names_every_changed_value_old_and_new():
    current = reference()
    current[3]["metrics"]["top1"] += 0.25  # kd seed 1
    current[0]["metrics"]["top5"] -= 1e-3  # baseline seed 0, an improvement would fail too
    checks = regress.compare(current, reference())
    assert failed(checks) == [("baseline", 0, "top5", "changed"), ("kd", 1, "top1", "changed")]
    text = regress.format_checks(checks, failed_only=True)
    assert "12.0 -> 12.25" in text and "50.0 -> 49.999" in text
    assert "2 of 12 checks failed" in regress.summary(checks)


def test_exact_tolerance_absorbs_last_digits_only():
    current = reference()
    current[3]["metrics"]["top1"] += 1e-9
    assert not failed(regress.compare(current, reference()))
    assert failed(regress.compare(current, reference(), tolerance=0.0))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
def test_nan_inf_and_null_fail_where_the_reference_is_a_number(bad):
    current = reference()
    current[2]["metrics"]["top1"] = bad
    assert failed(regress.compare(current, reference())) == [("kd", 0, "top1", "not finite")]
    assert failed(regress.compare(current, reference(), mode="stat")) == [("kd", None, "top1", "not finite")]


def test_not_applicable_metrics_and_zero_references_are_runs_only():
    ref, cur = reference(), reference()
    for r in ref + cur:
        r["metrics"]["map_large"] = None  # not applicable on this data
        r["metrics"]["top5"] = 0.0  # the smoke model learns nothing measurable here
    checks = regress.compare(cur, ref)
    assert not failed(checks)
    assert "12 value checks, 4 able to fail on a drop, 8 runs only" in regress.summary(checks)
    assert "runs only" in regress.format_checks(checks)
    cur[0]["metrics"]["map_large"] = 5.0  # still compared: a change fails
    assert failed(regress.compare(cur, ref)) == [("baseline", 0, "map_large", "changed")]


def test_missing_rows_fail_and_new_rows_are_not_checked():
    current = reference()[:3] + [record("takd", 0)]
    checks = regress.compare(current, reference())
    assert failed(checks) == [("kd", 1, regress.RECORD_CHECK, "missing")]
    assert {c.method for c in checks} == {"baseline", "kd"}


def test_different_hyperparameters_fail_naming_them():
    current = reference()
    current[2] = record("kd", 0, top1=11.0, top5=50.0, hparams={"T": 2.0})
    checks = regress.compare(current, reference())
    assert failed(checks) == [("kd", 0, regress.RECORD_CHECK, "hparams differ")]
    assert "T: 4.0 -> 2.0" in regress.format_checks(checks, failed_only=True)
    legacy = copy.deepcopy(current)  # records without identity: method.hparams is compared
    for r in legacy:
        del r["identity"]
    assert failed(regress.compare(legacy, reference())) == [("kd", 0, regress.RECORD_CHECK, "hparams differ")]


def test_other_data_fails():
    current = reference()
    current[1] = record("baseline", 1, top1=11.0, top5=51.0, data="e" * 64)
    assert failed(regress.compare(current, reference())) == [("baseline", 1, regress.RECORD_CHECK,
                                                              "identity differs")]


def edited_protocol_record(**kw):
    """A record of classification-smoke whose spec says lr 0.1: the code's protocol was edited since."""
    r = record(**kw)
    r["protocol"]["spec"]["schedule"]["lr"] = 0.1
    r["protocol"]["hash"] = "f" * 64
    return r


def test_a_protocol_changed_without_version_bump_fails_naming_the_field():
    ref = reference()
    ref[0] = edited_protocol_record(method="baseline", seed=0, top1=10.0, top5=50.0)
    checks = regress.compare(reference(), ref)
    assert failed(checks) == [("baseline", 0, regress.RECORD_CHECK, "protocol changed")]
    assert "schedule.lr: 0.1 -> 0.05" in regress.format_checks(checks, failed_only=True)
    del ref[0]["protocol"]["spec"]
    assert "fields unknown" in regress.format_checks(regress.compare(reference(), ref), failed_only=True)


def test_stat_mode_tolerance_is_k_pooled_standard_errors():
    ref = reference()  # every method: top1 seeds differ by 1 -> pooled std sqrt(2 * 0.5 / 2) = sqrt(0.5)
    s = regress.pooled_std(ref, PROTOCOL.key, "top1")
    assert s == pytest.approx(math.sqrt(0.5))
    tolerance = regress.STAT_K * s * math.sqrt(2 / 2)  # 2.12
    cur = reference()
    for r in cur[2:]:
        r["metrics"]["top1"] -= 2.0  # kd drops 2 < 2.12: noise
    for r in cur[:2]:
        r["metrics"]["top5"] += 30.0  # improvements pass
    checks = regress.compare(cur, ref, mode="stat")
    assert not failed(checks)
    kd = next(c for c in checks if (c.method, c.metric) == ("kd", "top1"))
    assert kd.tolerance == pytest.approx(tolerance) and kd.seed is None
    for r in cur[2:]:
        r["metrics"]["top1"] -= 0.2
    assert failed(regress.compare(cur, ref, mode="stat")) == [("kd", None, "top1", "regressed")]


def test_variants_are_not_compared_and_two_defaults_are_an_error():
    variant = record("kd", 0, top1=1.0, hparams={"T": 2.0})
    assert not failed(regress.compare(reference() + [variant], reference()))
    with pytest.raises(DataError, match="2 default records .* 'kd', seed 0"):
        regress.compare(reference() + [record("kd", 0)], reference())


def test_check_published_finds_changed_protocols_defaults_and_bad_values(monkeypatch):
    good = record("kd", 0)
    old_version = record("kd", 1)
    old_version["protocol"]["key"] = "classification-smoke@v1"
    edited = edited_protocol_record(method="baseline", seed=0)
    not_default = record("kd", 1, hparams={"T": 2.0})  # a variant: its hparams are its own
    checks, superseded = regress.check_published([good, old_version, edited, not_default])
    assert superseded == 1
    assert failed(checks) == [("baseline", 0, regress.RECORD_CHECK, "protocol changed")]
    monkeypatch.setitem(build_method(PROTOCOL, "kd").__class__.defaults, "T", 3.0)  # a default edited in code
    checks, _ = regress.check_published([good])
    assert failed(checks) == [("kd", 0, regress.RECORD_CHECK, "hparams differ")]
    assert "T: 4.0 -> 3.0" in regress.format_checks(checks, failed_only=True)
    null_primary = record("kd", 0, top1=None)
    assert failed(regress.check_published([null_primary])[0]) == [("kd", 0, regress.RECORD_CHECK, "not finite")]


def test_estimate_counts_each_teacher_once():
    assert regress.estimate_seconds(reference()) == pytest.approx(4 * 1.5 + 4.0)


# -- updating the reference ---------------------------------------------------------


@pytest.fixture
def two_method_tier(monkeypatch):
    """The smoke tier cut to classification-smoke with baseline and kd."""
    monkeypatch.setattr("bench.protocol.protocols_of_tier", lambda tier: [PROTOCOL])
    monkeypatch.setattr("bench.suite.applicable_methods", lambda protocol: ["baseline", "kd"])


def write(root, records):
    store = ResultsStore(root)
    for r in records:
        store.write(copy.deepcopy(r))
    return root


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_update_validates_first_and_replaces_atomically(tmp_path, two_method_tier):
    ref = write(tmp_path / "regression", [record("baseline", s, top1=99.0) for s in (0, 1)])
    before = listing(ref)
    new = write(tmp_path / "new", reference())
    incomplete = write(tmp_path / "incomplete", reference()[:3])
    with pytest.raises(DataError, match="kd seed 1: no record"):
        regress.update_reference(incomplete, ref, "smoke")
    with pytest.raises(DataError, match="is not a folder; the reference is unchanged"):
        regress.update_reference(tmp_path / "typo", ref, "smoke")
    assert listing(ref) == before
    assert regress.update_reference(new, ref, "smoke") == 4
    assert listing(ref) == listing(new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["incomplete", "new", "regression"]  # no leftovers


def test_update_refuses_records_of_another_protocol_version(tmp_path, two_method_tier):
    records = reference()
    records[0] = edited_protocol_record(method="baseline", seed=0)
    with pytest.raises(DataError, match="schedule.lr"):
        regress.validate_update(write(tmp_path / "new", records), "smoke")


def test_cli_mistyped_records_path_changes_nothing(tmp_path, capsys, two_method_tier):
    ref = write(tmp_path / "regression", reference())
    before = listing(ref)
    code = main(["regress", "--records", str(tmp_path / "typo"), "--reference", str(ref), "--update"])
    assert code == 2 and listing(ref) == before
    assert "typo is not a folder; nothing was compared or changed" in capsys.readouterr().err


def test_cli_compares_and_exits_1_on_a_change(tmp_path, capsys):
    ref = write(tmp_path / "regression", reference())
    args = ["regress", "--records", str(ref), "--reference", str(ref), "--skip-published"]
    assert main(args) == 0
    assert "all 12 checks passed" in capsys.readouterr().out
    changed = reference()
    changed[0]["metrics"]["top1"] = 3.0
    args[2] = str(write(tmp_path / "current", changed))
    assert main(args + ["--failures-only"]) == 1
    out = capsys.readouterr().out
    assert "10.0 -> 3.0" in out and "1 of 12 checks failed" in out


def test_cli_check_published(tmp_path, capsys):
    published = write(tmp_path / "published", [record("kd", 0), edited_protocol_record(method="baseline")])
    assert main(["regress", "--check-published", "--published", str(published)]) == 1
    out = capsys.readouterr().out
    assert "schedule.lr: 0.1 -> 0.05" in out and "1 of 2 match" in out


def test_environment_note_names_what_differs():
    ref, cur = reference(), reference()
    assert regress.environment_note(cur, ref) == ""
    for r in cur:
        r["provenance"] = {"platform": "Linux-other-kernel"}
    note = regress.environment_note(cur, ref)
    assert "platform null -> \"Linux-other-kernel\"" in note and "--mode stat" in note


def test_cli_update_never_replaces_the_published_records(tmp_path, capsys):
    records = write(tmp_path / "new", reference())
    assert main(["regress", "--tier", "mini", "--update", "--records", str(records)]) == 2
    assert "does not replace the published records" in capsys.readouterr().err


def test_cli_without_published_records_checks_nothing_there(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bench.cli.PUBLISHED_RECORDS", tmp_path / "none")  # a fresh tree, nothing published yet
    assert main(["regress", "--check-published"]) == 0
    assert "no published records" in capsys.readouterr().out
    assert main(["regress", "--check-published", "--published", str(tmp_path / "typo")]) == 2  # a path given: error


def test_cli_auto_mode_is_exact_on_the_reference_environment_and_stat_elsewhere(tmp_path, capsys):
    """A last-digit-sized change fails where the environment is the reference's (exact) and passes on another
    machine (stat: within the pooled seed noise), and the report says which mode it used and why."""
    ref = write(tmp_path / "regression", reference())
    changed = reference()
    changed[3]["metrics"]["top1"] += 0.25
    args = ["regress", "--records", str(write(tmp_path / "same", changed)), "--reference", str(ref),
            "--skip-published"]
    assert main(args) == 1
    assert "mode: exact" in capsys.readouterr().out
    for r in changed:
        r["provenance"] = {"platform": "Linux-other-kernel"}
    args[2] = str(write(tmp_path / "elsewhere", changed))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mode: stat" in out and "Linux-other-kernel" in out
    assert main(args + ["--mode", "exact"]) == 1  # asked for explicitly, exact still applies
