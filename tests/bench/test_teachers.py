import json

import pytest
import torch

from bench.errors import TeacherMismatchError
from bench.paths import sha256_file
from bench.registry import TASKS
from bench.results import ResultsStore
from bench.runner import RunOptions, run_one
from bench.paths import CacheIntegrityWarning
from bench.teachers import TeacherZoo

DATA = "fingerprint-of-the-smoke-data"


@pytest.fixture(scope="module")
def task_and_splits():
    from bench.protocol import get_protocol

    protocol = get_protocol("classification-smoke")
    task = TASKS.get("classification")()
    return protocol, task, task.load_splits(protocol.dataset)


def test_zoo_trains_once_then_loads_weights_only(task_and_splits, tmp_path):
    protocol, task, splits = task_and_splits
    zoo = TeacherZoo(tmp_path)
    trained = zoo.get(protocol, task, splits, DATA)
    weights, meta = zoo.paths(protocol, DATA)
    assert json.loads(meta.read_text())["sha256"] == sha256_file(weights) == trained.sha256
    assert isinstance(torch.load(weights, weights_only=True), dict)
    loaded = zoo.get(protocol, task, splits, DATA)
    assert loaded.sha256 == trained.sha256 and loaded.metrics == trained.metrics
    for k, v in trained.model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k])


def test_tampered_cache_is_retrained_with_a_warning(task_and_splits, tmp_path):
    protocol, task, splits = task_and_splits
    zoo = TeacherZoo(tmp_path)
    trained = zoo.get(protocol, task, splits, DATA)
    weights, _ = zoo.paths(protocol, DATA)
    state = torch.load(weights, weights_only=True)
    state["fc.bias"] += 1
    torch.save(state, weights)
    with pytest.warns(CacheIntegrityWarning, match="sha256"):
        again = zoo.get(protocol, task, splits, DATA)
    assert again.sha256 == trained.sha256 == sha256_file(weights)  # retrained: the same weights again


def test_user_teacher_file_with_wrong_hash_stops_before_training(tiny_protocol, tmp_path):
    task = TASKS.get("classification")()
    model = task.build_model(tiny_protocol.teacher.model, 20)
    path = tmp_path / "teacher.pt"
    torch.save(model.state_dict(), path)
    options = RunOptions(teacher_file=str(path), teacher_sha256="0" * 64)
    with pytest.raises(TeacherMismatchError, match="does not match"):
        run_one(tiny_protocol, "kd", 0, ResultsStore(tmp_path / "r"), options)
    assert not (tmp_path / "r").exists()


def test_user_teacher_file_with_wrong_shapes_is_named(tiny_protocol, tmp_path):
    task = TASKS.get("classification")()
    wrong = task.build_model("tinyresnet_8", 20)  # the protocol's teacher is wider
    path = tmp_path / "teacher.pt"
    torch.save(wrong.state_dict(), path)
    with pytest.raises(TeacherMismatchError, match="shape of") as info:
        run_one(tiny_protocol, "kd", 0, ResultsStore(tmp_path / "r"), RunOptions(teacher_file=str(path)))
    assert str(path) in str(info.value)


def test_user_teacher_file_is_used(tiny_protocol, tmp_path):
    task = TASKS.get("classification")()
    torch.manual_seed(5)
    model = task.build_model(tiny_protocol.teacher.model, 20)
    path = tmp_path / "teacher.pt"
    torch.save(model.state_dict(), path)
    sha = sha256_file(path)
    record = run_one(tiny_protocol, "kd", 0, ResultsStore(tmp_path / "r"),
                     RunOptions(teacher_file=str(path), teacher_sha256=sha.upper()))  # case does not matter
    assert record["teacher"]["source"] == "file"
    assert record["teacher"]["sha256"] == sha
    # a seed distilled from a user's file is its own entry, never averaged with zoo-teacher seeds
    assert record["identity"]["teachers"] == [{"source": "file", "sha256": sha}]
    assert not record["identity"]["default"] and record["identity"]["label"] == f"teacher file {sha[:8]}"


def test_pickled_module_is_not_loaded(tiny_protocol, tmp_path):
    task = TASKS.get("classification")()
    path = tmp_path / "teacher.pt"
    torch.save(task.build_model(tiny_protocol.teacher.model, 20), path)  # a whole module, not weights
    with pytest.raises(TeacherMismatchError, match="weights-only") as info:
        run_one(tiny_protocol, "kd", 0, ResultsStore(tmp_path / "r"), RunOptions(teacher_file=str(path)))
    assert "weights_only" not in str(info.value)  # torch's advice to load it unsafely is never repeated
    assert str(path) in str(info.value)
