"""Shipped teachers (bench/shipped_teachers.py): shipped once, used instead of training, checked by sha256,
retrained and compared by ``kdbench teachers verify``."""

from __future__ import annotations

import shutil

import pytest

from bench.paths import CacheIntegrityWarning
from bench.runner import RunOptions, Workspace, build_method
from bench.shipped_teachers import manifest, ship_protocol, verify_protocol


@pytest.fixture(scope="module")
def shipped_once(tmp_path_factory):
    """The tiny protocol's teachers trained in a cache of their own and shipped into a folder (once)."""
    from conftest import tiny_protocol_of
    from bench.protocol import get_protocol

    base = tmp_path_factory.mktemp("shipped-once")
    protocol = tiny_protocol_of(get_protocol("classification-smoke"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KDBENCH_SHIPPED_TEACHERS", str(base / "shipped"))
        mp.setenv("KDBENCH_CACHE", str(base / "cache"))
        lines = ship_protocol(protocol, RunOptions())
    return base / "shipped", lines


@pytest.fixture
def shipped(shipped_once, tmp_path, monkeypatch):
    """A copy of the shipped folder for this test, and an empty cache: whatever a run needs that is not
    shipped would be trained (and cached) here."""
    root = tmp_path / "shipped"
    shutil.copytree(shipped_once[0], root)
    monkeypatch.setenv("KDBENCH_SHIPPED_TEACHERS", str(root))
    monkeypatch.setenv("KDBENCH_CACHE", str(tmp_path / "cache-b"))
    return root, shipped_once[1]


def test_ship_writes_every_teacher_member_and_assistant_once(shipped, tiny_protocol):
    root, lines = shipped
    entries = manifest(root)
    roles = sorted((e["role"], e["model"]) for e in entries.values())
    expected = [("assistant", m) for m in tiny_protocol.assistants]
    expected += [("member", r.model) for r in tiny_protocol.ensemble if r != tiny_protocol.teacher]
    expected += [("teacher", tiny_protocol.teacher.model)]  # once, also when it is an ensemble member
    assert roles == sorted(expected) and len(lines) == len(expected)
    for entry in entries.values():
        assert (root / entry["file"]).is_file() and entry["protocol"] == tiny_protocol.key
        assert entry["sha256"].startswith(entry["file"].rsplit("-", 1)[1][:-3])
        assert entry["classes"] and entry["metrics"] and entry["platform"]
    assert all("already shipped" in line for line in ship_protocol(tiny_protocol, RunOptions()))


def test_a_shipped_teacher_is_used_instead_of_training(shipped, tiny_protocol, tmp_path):
    root, _ = shipped
    workspace = Workspace(tiny_protocol, RunOptions())
    teaching = workspace.teaching(build_method(tiny_protocol, "takd"))
    for _, teacher in teaching.stages:
        entry = manifest(root)[teacher.recipe_key]
        assert teacher.shipped and teacher.sha256 == entry["sha256"] and teacher.metrics == entry["metrics"]
        assert teacher.describe()["shipped"] is True
    assert not (tmp_path / "cache-b" / "teachers").exists()  # nothing trained, nothing cached
    trained = Workspace(tiny_protocol, RunOptions(shipped_teachers=False)).teacher()
    assert not trained.shipped and "shipped" not in trained.describe()
    assert trained.recipe_key == teaching.stages[0][1].recipe_key  # one recipe, one identity


def test_an_altered_shipped_file_is_reported_and_the_recipe_trained(shipped, tiny_protocol):
    root, _ = shipped
    [entry] = [e for e in manifest(root).values() if e["role"] == "teacher"]
    path = root / entry["file"]
    path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1]))
    with pytest.warns(CacheIntegrityWarning, match="sha256 is not the manifest's"):
        teacher = Workspace(tiny_protocol, RunOptions()).teacher()
    assert not teacher.shipped


def test_verify_retrains_and_finds_the_same_bits_on_the_same_machine(shipped, tiny_protocol, tmp_path):
    root, _ = shipped
    lines, ok = verify_protocol(tiny_protocol, RunOptions(), tmp_path / "verify-cache")
    assert ok and len(lines) == len(manifest(root))
    assert all("retrained bit-identical" in line for line in lines), lines


def test_the_cli_lists_ships_and_verifies(shipped, tiny_protocol, capsys, monkeypatch):
    from bench.cli import main

    assert main(["teachers", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{tiny_protocol.key} teacher {tiny_protocol.teacher.model}" in listed


def test_the_shipped_assistants_survive_a_change_of_the_training_code(monkeypatch):
    """The repository's shipped teacher and assistant of the gap protocol are found by their recipe alone:
    a change of the training code (its digest) leaves them in use; only the cache key moves."""
    from pathlib import Path

    from bench.protocol import get_protocol

    repository = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("KDBENCH_SHIPPED_TEACHERS", str(repository / "leaderboard" / "teachers"))
    monkeypatch.setattr("bench.teachers.training_code_digest", lambda *a, **k: "0" * 64)
    protocol = get_protocol("classification-gap")
    stages = Workspace(protocol, RunOptions()).teaching(build_method(protocol, "takd")).stages
    assert [(role, teacher.shipped) for role, teacher in stages] == [("teacher", True), ("assistant", True)]
