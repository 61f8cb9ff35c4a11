"""Integrity (issue 12 items 7, 10, 11; issue 11 §2): record digests, a status earned by a rerun,
cache files checked on load and rebuilt, finite numbers only, stale temporary files, clean publish."""

import json
import os
import time

import pytest
import torch

from bench import cli
from bench.errors import ConfigError, DataError
from bench.paths import CacheIntegrityWarning, atomic_write_text, hash_path, load_checked, save_checked
from bench.results import ResultsStore, iter_records, load_record, record_digest, verified_path
from bench.runner import RunOptions, Workspace, run_one
from bench.teacher_cache import TeacherOutputCache
from bench.verify import verify_record


@pytest.fixture(scope="module")
def stored(tmp_path_factory, tiny_protocol_module):
    """One real record of the tiny protocol (baseline, seed 0), written once for the module."""
    tiny = tiny_protocol_module
    root = tmp_path_factory.mktemp("records")
    record = run_one(tiny, "baseline", 0, ResultsStore(root))
    return tiny, root, record


@pytest.fixture(scope="module")
def tiny_protocol_module():
    import dataclasses

    from bench.protocol import get_protocol

    smoke = get_protocol("classification-smoke")
    return dataclasses.replace(smoke, name="classification-tiny",
                               schedule=dataclasses.replace(smoke.schedule, epochs=1), seeds=(0,))


def record_file(root):
    return next(p for p in root.rglob("seed-0.json"))


def rewrite(path, change):
    """Edit a record file as a user would (no new digest)."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_an_edited_record_is_refused(stored, tmp_path):
    _, root, _ = stored
    copy = tmp_path / "seed-0.json"
    copy.write_text(record_file(root).read_text())
    load_record(copy)
    rewrite(copy, lambda r: r["metrics"].update(top1=r["metrics"]["top1"] + 30))
    with pytest.raises(DataError, match="tampered") as info:
        load_record(copy)
    assert str(copy) in str(info.value)


def test_status_is_derived_never_read(stored, tmp_path):
    _, root, record = stored
    copy = tmp_path / "seed-0.json"
    copy.write_text(record_file(root).read_text())
    rewrite(copy, lambda r: r.update(status="verified"))  # status is outside the digest
    assert load_record(copy)["status"] == "claimed"
    verified_path(copy).write_text(json.dumps({"digest": "0" * 64}))
    assert load_record(copy)["status"] == "claimed"
    verified_path(copy).write_text(json.dumps({"digest": record["digest"]}))
    assert load_record(copy)["status"] == "verified"
    assert [r["digest"] for r in iter_records(tmp_path)] == [record["digest"]]  # the proof is no record


@pytest.mark.parametrize("literal", ["Infinity", "NaN", "-Infinity"])
def test_a_non_finite_metric_is_refused_by_name(stored, tmp_path, literal):
    _, root, _ = stored
    path = tmp_path / "seed-0.json"
    text = record_file(root).read_text()
    data = json.loads(text)
    data["metrics"]["top5"] = "PLACEHOLDER"
    data["digest"] = "x"
    path.write_text(json.dumps(data).replace('"PLACEHOLDER"', literal))
    with pytest.raises(DataError, match="metrics.top5"):
        load_record(path)


def test_not_applicable_metrics_are_null_and_the_primary_one_is_required(stored, tmp_path):
    tiny, _, record = stored
    store = ResultsStore(tmp_path)
    record = json.loads(json.dumps(record))
    record["metrics"]["top5"] = None
    store.write(record)
    assert store.read(tiny.key, record["identity"])["metrics"]["top5"] is None
    record["metrics"]["top1"] = None
    with pytest.raises(DataError, match="primary metric 'top1' is null"):
        store.write(record)


def test_schema_1_records_are_refused_with_what_to_do(tmp_path):
    path = tmp_path / "seed-0.json"
    path.write_text(json.dumps({"schema": 1, "metrics": {"top1": 1.0}}))
    with pytest.raises(DataError, match="schema-1 .*rerun"):
        load_record(path)


def test_verify_record_marks_a_reproduced_record_verified(stored, monkeypatch, capsys):
    tiny, root, record = stored
    monkeypatch.setattr("bench.protocol.get_protocol", lambda name: tiny)
    path = record_file(root)
    assert cli.main(["verify-record", str(path), "--quiet"]) == 0
    assert load_record(path)["status"] == "verified"
    assert "reproduced" in capsys.readouterr().out
    verified_path(path).unlink()


def test_verify_record_names_each_changed_metric(stored, tmp_path, monkeypatch, capsys):
    tiny, _, record = stored
    monkeypatch.setattr("bench.protocol.get_protocol", lambda name: tiny)
    forged = json.loads(json.dumps(record))
    forged["metrics"]["top1"] += 30  # a consistent digest, numbers no rerun gives
    path = ResultsStore(tmp_path).write(forged)
    assert cli.main(["verify-record", str(path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"top1: recorded {forged['metrics']['top1']}, rerun {record['metrics']['top1']}" in out
    assert "top5" not in out.split("metrics differ")[0]
    assert not verified_path(path).exists() and load_record(path)["status"] == "claimed"


def test_verify_record_refuses_another_protocol_spec(stored, tmp_path, monkeypatch):
    tiny, _, record = stored
    monkeypatch.setattr("bench.protocol.get_protocol", lambda name: tiny)
    other = json.loads(json.dumps(record))
    other["protocol"]["hash"] = "0" * 64
    other["protocol"]["spec"]["schedule"]["lr"] = 1.0
    path = ResultsStore(tmp_path).write(other)
    with pytest.raises(ConfigError, match="changed: schedule.lr"):
        verify_record(path, RunOptions())


def test_tampered_teacher_output_cache_is_rebuilt(tiny_protocol, tmp_path):
    ws = Workspace(tiny_protocol, RunOptions())
    teacher = ws.teacher()
    args = (teacher.model, teacher.model_name, teacher.sha256, ws.data, ws.task, ws.splits["train"],
            tiny_protocol.augmentation, ("logits",), tmp_path)
    genuine, _ = TeacherOutputCache.load_or_build(*args)
    (path,) = tmp_path.glob("*.pt")
    torch.save({"logits": torch.zeros_like(genuine.features["logits"])}, path)  # logits replaced
    with pytest.warns(CacheIntegrityWarning, match="content hash"):
        rebuilt, forwards = TeacherOutputCache.load_or_build(*args)
    assert forwards > 0 and torch.equal(rebuilt.features["logits"], genuine.features["logits"])
    path.write_bytes(path.read_bytes()[:100])  # truncated (its hash is stale too)
    with pytest.warns(CacheIntegrityWarning):
        _, forwards = TeacherOutputCache.load_or_build(*args)
    assert forwards > 0
    _, forwards = TeacherOutputCache.load_or_build(*args)
    assert forwards == 0  # healed


def test_truncated_generated_data_is_regenerated(isolated_cache):
    from tasks.classification.task import load_shapes20

    spec = dict(train_per_class=2, val_per_class=1, test_per_class=1, seed=123)
    before = set((isolated_cache / "data").glob("shapes20-*.pt"))
    first = load_shapes20(**spec)
    (path,) = set((isolated_cache / "data").glob("shapes20-*.pt")) - before
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.warns(CacheIntegrityWarning, match="generated dataset"):
        again = load_shapes20(**spec)
    assert torch.equal(again["train"].inputs, first["train"].inputs)


def test_load_checked_refuses_a_file_without_its_hash(tmp_path):
    path = tmp_path / "x.pt"
    save_checked({"a": torch.ones(2)}, path)
    assert torch.equal(load_checked(path, "cache")["a"], torch.ones(2))
    hash_path(path).unlink()
    with pytest.warns(CacheIntegrityWarning, match="no content hash"):
        assert load_checked(path, "cache") is None


def test_stale_temporary_files_are_removed_on_the_next_write(tmp_path):
    old, fresh, other = tmp_path / ".tmp-old", tmp_path / ".tmp-fresh", tmp_path / "notes.tmp"
    for path in (old, fresh, other):
        path.write_text("left by a killed writer")
    day_ago = time.time() - 86400
    os.utime(old, (day_ago, day_ago))
    os.utime(other, (day_ago, day_ago))
    atomic_write_text(tmp_path / "seed-0.json", "{}")
    assert not old.exists() and fresh.exists() and other.exists()


def test_a_record_digest_covers_everything_but_status_and_digest(stored):
    _, _, record = stored
    assert record_digest({**record, "status": "verified", "digest": "x"}) == record["digest"]
    assert record_digest({**record, "seed": 1}) != record["digest"]


@pytest.mark.parametrize("command", [["suite", "--publish", "--tier", "smoke"],
                                     ["sweep", "--publish", "--protocol", "classification-gap"]])
def test_publish_refuses_a_dirty_tree_before_training(monkeypatch, capsys, command):
    monkeypatch.setattr("bench.provenance.dirty_files", lambda: ["bench/engine.py"])

    def no_training(*args, **kwargs):
        raise AssertionError("trained on a dirty tree")

    monkeypatch.setattr("bench.suite.run_suite", no_training)
    monkeypatch.setattr("bench.sweep.run_assistant_sweep", no_training)
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert "dirty tree" in err and "bench/engine.py" in err


def test_rewritten_records_and_tables_do_not_make_the_tree_dirty(monkeypatch):
    """A publish with --force rewrites committed records of the runs it repeats; those, the tables and the
    sweeps are outputs, so they leave the provenance clean; code and shipped teachers do not."""
    from bench import provenance

    status = ("M leaderboard/records/p@v1/kd/abc/seed-0.json\n M leaderboard/tables/README.md\n"
              " M leaderboard/sweeps/x.csv\n M leaderboard/teachers/manifest.json\nM  bench/engine.py")
    monkeypatch.setattr(provenance, "_git", lambda *args: status)
    assert provenance.dirty_files() == ["bench/engine.py", "leaderboard/teachers/manifest.json"]
    monkeypatch.setattr(provenance, "_git", lambda *args: "M leaderboard/records/p@v1/kd/abc/seed-0.json")
    assert provenance.dirty_files() == []


def test_verify_record_never_reruns_into_the_store_it_checks(stored):
    _, root, _ = stored
    with pytest.raises(ConfigError, match="would replace the record"):
        verify_record(record_file(root), RunOptions(), results=root)
