"""Submissions (bench/submission.py, issue 17 item 2): a bundle holds every seed and is refused when
incomplete; ``kdbench verify`` reruns seeds and marks the entry verified, or lists every mismatch; a
bundle edited by hand is detected; verified seeds show as such on the leaderboard."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.identity import sha256_json
from bench.protocol import get_protocol
from bench.results import ResultsStore, iter_records, record_digest
from bench.runner import RunOptions, run_one

PROTOCOL = "classification-smoke"


@pytest.fixture(scope="module")
def clean_results(tmp_path_factory):
    """kd on every seed of the smoke protocol, as from a clean tree."""
    root = tmp_path_factory.mktemp("records")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("bench.provenance.dirty_files", lambda: [])
        protocol = get_protocol(PROTOCOL)
        for seed in protocol.seeds:
            run_one(protocol, "kd", seed, ResultsStore(root), RunOptions())
    return root


def submit(results, out, *extra) -> int:
    return main(["submit", "--protocol", PROTOCOL, "--method", "kd", "--results", str(results), "--out", str(out),
                 *extra])


def test_a_bundle_is_verified_by_a_rerun_and_shows_on_the_leaderboard(clean_results, tmp_path, capsys):
    bundle = tmp_path / "kd.kdbench.json"
    assert submit(clean_results, bundle) == 0
    content = json.loads(bundle.read_text())
    assert content["seeds"] == list(get_protocol(PROTOCOL).seeds)
    assert content["method"]["file"] == "kd.py" and content["method"]["origin"] == "built-in (baselines/kd.py)"
    assert "class KD(Method)" in content["method"]["text"]
    assert content["command"].startswith(f"kdbench run --protocol {PROTOCOL} --method kd --seeds")
    assert content["protocol"]["hash"] == get_protocol(PROTOCOL).spec_hash
    capsys.readouterr()
    imported = tmp_path / "leaderboard-records"
    assert main(["verify", str(bundle), "--seeds", "0", "--import", str(imported), "--by", "tester",
                 "--quiet"]) == 0
    assert "reproduced (exact)" in capsys.readouterr().out
    proof = json.loads((tmp_path / "kd.kdbench.verified.json").read_text())
    assert proof["ok"] and proof["by"] == "tester" and proof["seeds"] == [0] and proof["mode"] == "exact"
    statuses = {r["seed"]: r["status"] for r in iter_records(imported)}
    assert statuses[0] == "verified" and all(s == "claimed" for seed, s in statuses.items() if seed != 0)
    from leaderboard.render import build_tables

    [table] = build_tables(iter_records(imported))
    [row] = table.rows
    assert row.status_text == f"claimed (1 of {len(statuses)} seeds verified)"


def test_a_metric_edited_by_hand_is_detected(clean_results, tmp_path, capsys):
    bundle = tmp_path / "kd.kdbench.json"
    assert submit(clean_results, bundle) == 0
    content = json.loads(bundle.read_text())
    content["records"][1]["metrics"]["top1"] += 5.0
    bundle.write_text(json.dumps(content))
    capsys.readouterr()
    assert main(["verify", str(bundle), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "record of seed 1: its digest does not match its content" in err
    assert "the bundle's digest does not match" in err


def test_a_forged_bundle_fails_its_rerun_with_every_mismatch_listed(clean_results, tmp_path, capsys):
    """Digests recomputed after the edit (a forger's bundle): the rerun still catches it."""
    bundle = tmp_path / "kd.kdbench.json"
    assert submit(clean_results, bundle) == 0
    content = json.loads(bundle.read_text())
    record = content["records"][0]
    record["metrics"]["top1"] += 5.0
    record["metrics"]["top5"] -= 1.0
    record["digest"] = record_digest(record)
    content["digest"] = sha256_json({k: v for k, v in content.items() if k != "digest"})
    bundle.write_text(json.dumps(content))
    capsys.readouterr()
    assert main(["verify", str(bundle), "--seeds", "0", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "seed 0 top1: bundle" in out and "seed 0 top5: bundle" in out and "not verified" in out
    assert not (tmp_path / "kd.kdbench.verified.json").exists()


def test_an_incomplete_or_dirty_submission_is_refused_listing_every_problem(tmp_path, capsys, monkeypatch):
    partial = tmp_path / "partial"
    monkeypatch.setattr("bench.provenance.dirty_files", lambda: ["bench/engine.py"])
    run_one(get_protocol(PROTOCOL), "kd", 0, ResultsStore(partial), RunOptions())  # a dirty tree's run, seed 0 only
    capsys.readouterr()
    assert submit(partial, tmp_path / "x.kdbench.json") == 2
    err = capsys.readouterr().err
    assert "seed 0: made from a tree with uncommitted changes" in err
    assert "seeds [1] of the protocol's [0, 1] have no record" in err
    assert not (tmp_path / "x.kdbench.json").exists()
