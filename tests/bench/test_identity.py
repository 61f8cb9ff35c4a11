"""Identity of a record (issue 12 items 4 and 5): hyperparameters, teachers and data are part of it,
the store's "already done" test uses it, and teachers and caches are keyed by the data and the code."""

import dataclasses
import os
import shutil

import numpy as np

from bench.identity import (
    _digest_files,
    data_fingerprint,
    make_identity,
    protocol_spec,
    sha256_json,
)
from bench.protocol import get_protocol
from bench.registry import PROTOCOLS
from bench.results import ResultsStore
from bench.runner import RunOptions, Workspace, run_identity, run_one
from bench.teacher_cache import TeacherOutputCache
from bench.teachers import TeacherZoo, recipe_hash


def test_protocol_spec_is_what_the_protocol_hash_hashes():
    for name in PROTOCOLS.names():
        protocol = get_protocol(name)
        assert sha256_json(protocol_spec(protocol)) == protocol.spec_hash


def test_entry_is_everything_but_the_seed():
    base = dict(protocol_hash="p", method="kd", hparams={"T": 4.0, "alpha": 0.9},
                defaults={"T": 4.0, "alpha": 0.9}, teachers=[{"source": "zoo", "recipe": "r"}], data="d")
    seed0, seed1 = make_identity(**base, seed=0), make_identity(**base, seed=1)
    assert seed0["entry"] == seed1["entry"] and seed0["seed"] != seed1["seed"]
    assert seed0["default"] and seed0["label"] == ""
    for change in ({"hparams": {"T": 2, "alpha": 0.9}}, {"teachers": [{"source": "file", "sha256": "ab" * 32}]},
                   {"data": "other"}, {"protocol_hash": "q"}, {"method": "dkd"}):
        assert make_identity(**{**base, **change}, seed=0)["entry"] != seed0["entry"], change
    variant = make_identity(**{**base, "hparams": {"T": 2, "alpha": 0.5},
                               "teachers": [{"source": "file", "sha256": "1a2b3c4d" + "0" * 56}]}, seed=0)
    assert not variant["default"]
    assert variant["label"] == "T=2, alpha=0.5; teacher file 1a2b3c4d"


def test_a_variant_runs_in_a_folder_holding_the_default_and_is_its_own_entry(tiny_protocol, tmp_path):
    store = ResultsStore(tmp_path)
    default = run_one(tiny_protocol, "kd", 0, store)
    variant = run_one(tiny_protocol, "kd", 0, store, RunOptions(hparams={"alpha": 0.5}))
    assert variant is not None, "--set alpha=0.5 was taken for the default run already stored"
    assert variant["identity"]["entry"] != default["identity"]["entry"]
    assert variant["identity"]["label"] == "alpha=0.5" and not variant["identity"]["default"]
    assert default["identity"]["default"]
    assert len(list(tmp_path.rglob("seed-0.json"))) == 2
    assert run_one(tiny_protocol, "kd", 0, store, RunOptions(hparams={"alpha": 0.5})) is None
    assert run_one(tiny_protocol, "kd", 0, store) is None
    assert store.exists(tiny_protocol.key, run_identity(tiny_protocol, "kd", 0))


def test_identity_is_known_before_any_data_is_loaded(tiny_protocol, monkeypatch):
    from bench.task import Task

    def no_loading(*args, **kwargs):
        raise AssertionError("the identity loaded the data")

    monkeypatch.setattr(Task, "load_splits", no_loading)
    identity = run_identity(tiny_protocol, "kd", 3)
    assert identity["seed"] == 3 and identity["teachers"][0]["source"] == "zoo"
    assert run_identity(tiny_protocol, "baseline", 3)["teachers"] == []


def write_image_folder(root, images_per_class=3):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(images_per_class):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (root / "labels.json").write_text('{"cat": 0, "dog": 1}')


def test_real_data_fingerprint_sees_edits_and_ignores_the_location(tmp_path):
    spec = {"name": "imagefolder", "size": 8}
    root = tmp_path / "a"
    write_image_folder(root)
    first = data_fingerprint(spec, root)
    assert data_fingerprint(spec, root) == first
    copy = tmp_path / "b"
    shutil.copytree(root, copy)  # copy2 keeps the mtimes
    assert data_fingerprint(spec, copy) == first
    assert data_fingerprint({**spec, "size": 16}, root) != first
    # an annotation relabelled with its size and mtime kept is still seen (content hash)
    labels = root / "labels.json"
    stat = labels.stat()
    labels.write_text('{"cat": 1, "dog": 0}')
    os.utime(labels, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    relabelled = data_fingerprint(spec, root)
    assert relabelled != first
    # an image rewritten in place (new mtime), one added, one removed
    image = root / "train" / "cat" / "0.png"
    image.write_bytes(image.read_bytes())
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    edited = data_fingerprint(spec, root)
    assert edited != relabelled
    shutil.copy2(image, root / "train" / "cat" / "9.png")
    assert data_fingerprint(spec, root) != edited
    (root / "train" / "cat" / "9.png").unlink()
    assert data_fingerprint(spec, root) == edited


def test_generated_data_fingerprint_follows_the_spec():
    spec = get_protocol("classification-smoke").dataset
    assert data_fingerprint(spec) == data_fingerprint(dict(spec))
    assert data_fingerprint({**spec, "seed": 1}) != data_fingerprint(spec)


def test_teacher_of_another_dataset_or_code_is_not_reused(tiny_protocol, tmp_path, monkeypatch):
    zoo = TeacherZoo(tmp_path)
    a, b = zoo.paths(tiny_protocol, "data-a"), zoo.paths(tiny_protocol, "data-b")
    assert a != b and recipe_hash(tiny_protocol, "data-a") != recipe_hash(tiny_protocol, "data-b")
    monkeypatch.setattr("bench.teachers.training_code_digest", lambda *names: "other code")
    assert zoo.paths(tiny_protocol, "data-a") != a
    assert recipe_hash(tiny_protocol, "data-a") == recipe_hash(tiny_protocol, "data-a")  # identity unchanged


def test_code_digest_follows_file_content(tmp_path):
    path = tmp_path / "engine.py"
    path.write_text("x = 1\n")
    before = _digest_files((path,))
    path.write_text("x = 2\n")
    _digest_files.cache_clear()
    assert _digest_files((path,)) != before


def test_teacher_output_cache_is_keyed_by_the_data(tiny_protocol, tmp_path):
    ws = Workspace(tiny_protocol, RunOptions())
    teacher = ws.teacher()
    args = (teacher.model, teacher.model_name, teacher.sha256)
    rest = (ws.task, ws.splits["train"], tiny_protocol.augmentation, ("logits",), tmp_path)
    _, built = TeacherOutputCache.load_or_build(*args, "data-a", *rest)
    _, again = TeacherOutputCache.load_or_build(*args, "data-a", *rest)
    _, other = TeacherOutputCache.load_or_build(*args, "data-b", *rest)
    assert built > 0 and again == 0 and other == built


def test_two_imagefolder_datasets_do_not_share_a_teacher(tiny_protocol, tmp_path):
    """A teacher trained on dataset A is not reused for dataset B (issue 12 item 5), end to end."""
    protocol = dataclasses.replace(tiny_protocol, dataset={"name": "imagefolder", "size": 8, "val_fraction": 0.2})
    protocol = dataclasses.replace(protocol, teacher=dataclasses.replace(
        protocol.teacher, schedule=dataclasses.replace(protocol.schedule, batch_size=4)))
    for name in ("a", "b"):
        write_image_folder(tmp_path / name, images_per_class=6)
    (tmp_path / "b" / "labels.json").write_text('{"cat": 1, "dog": 0}')
    zoo = TeacherZoo(tmp_path / "zoo")
    ws_a = Workspace(protocol, RunOptions(data_root=str(tmp_path / "a")))
    ws_b = Workspace(protocol, RunOptions(data_root=str(tmp_path / "b")))
    assert ws_a.data != ws_b.data
    zoo.get(protocol, ws_a.task, ws_a.splits, ws_a.data)
    assert zoo.is_cached(protocol, ws_a.data) and not zoo.is_cached(protocol, ws_b.data)
    assert run_identity(protocol, "kd", 0, RunOptions(data_root=str(tmp_path / "a")))["data"] == ws_a.data
    assert zoo.paths(protocol, ws_a.data) != zoo.paths(protocol, ws_b.data)


def test_run_command_runs_a_variant_next_to_the_stored_default(tmp_path, capsys):
    from bench.cli import main

    base = ["run", "--protocol", "classification-smoke", "--method", "kd", "--seeds", "0",
            "--results", str(tmp_path), "--quiet"]
    assert main(base) == 0
    assert main([*base, "--set", "alpha=0.5"]) == 0
    out = capsys.readouterr().out
    assert "already in" not in out and "kd [alpha=0.5] seed 0:" in out
    assert main([*base, "--set", "alpha=0.5"]) == 0
    assert "kd [alpha=0.5] seed 0: already in" in capsys.readouterr().out
