import json

import pytest

from bench.errors import DataError
from bench.identity import make_identity
from bench.results import ResultsStore, load_record, record_digest, validate_record
from bench.runner import RunOptions, run_one

IDENTITY = make_identity("h", "m", {}, {}, [], "d", 0)


def make_record(**over):
    """A schema-2 record as the store writes it (status claimed, digest set)."""
    record = {
        "schema": 2,
        "protocol": {"name": "p", "key": "p@v1", "version": 1, "hash": "h", "task": "t", "tier": "smoke"},
        "method": {"name": "m", "hparams": {}}, "identity": IDENTITY, "seed": 0, "status": "claimed",
        "metrics": {"top1": 50.0}, "primary_metric": "top1",
        "efficiency": {}, "cost": {}, "provenance": {},
    }
    record.update(over)
    record["digest"] = record_digest(record)
    return record


def test_write_is_atomic_and_readable(tmp_path):
    store = ResultsStore(tmp_path)
    path = store.write(make_record())
    assert path == tmp_path / "p@v1" / "m" / IDENTITY["entry"][:12] / "seed-0.json"
    assert store.read("p@v1", IDENTITY)["metrics"] == {"top1": 50.0}
    assert [p.name for p in path.parent.iterdir()] == ["seed-0.json"]


@pytest.mark.parametrize("bad,key", [
    ({"metrics": {"top1": "50.0"}}, "top1"),
    ({"status": "maybe"}, "status"),
    ({"primary_metric": "top5"}, "top5"),
])
def test_malformed_records_are_named(tmp_path, bad, key):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(make_record(**bad)))
    with pytest.raises(DataError, match=key) as info:
        load_record(path)
    assert str(path) in str(info.value)


def test_missing_key_is_named():
    record = make_record()
    del record["cost"]
    with pytest.raises(DataError, match="'cost'"):
        validate_record(record)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dumps", boom)
    with pytest.raises(KeyboardInterrupt):
        store.write(make_record())
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_interrupted_run_leaves_no_record(tmp_path, tiny_protocol, monkeypatch):
    import bench.engine

    calls = {"n": 0}
    original = bench.engine.Distiller.__call__

    def interrupt_on_third_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(bench.engine.Distiller, "__call__", interrupt_on_third_step)
    store = ResultsStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_one(tiny_protocol, "baseline", 0, store)
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_done_runs_are_skipped_unless_forced(tmp_path, tiny_protocol):
    store = ResultsStore(tmp_path)
    first = run_one(tiny_protocol, "baseline", 0, store)
    assert first is not None
    assert run_one(tiny_protocol, "baseline", 0, store) is None
    again = run_one(tiny_protocol, "baseline", 0, store, RunOptions(force=True))
    assert again["metrics"] == first["metrics"]
