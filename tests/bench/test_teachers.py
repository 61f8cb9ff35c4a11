import argparse
import json

import pytest
import torch

from bench.errors import TeacherMismatchError
from bench.paths import sha256_file
from bench.registry import TASKS
from bench.results import ResultsStore
from bench.runner import RunOptions, run_one
from bench.paths import CacheIntegrityWarning
from bench.teachers import TeacherZoo, sha256_pinned_by_name

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


# --- reference checkpoint formats, architecture identification, name-pinned hashes (issue 13) ---


def _zoo_teacher(task_and_splits, path, model_name):
    protocol, task, splits = task_and_splits
    return TeacherZoo(path.parent / "zoo").from_file(protocol, task, splits, str(path), model_name=model_name)


def _same_weights(a, b):
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("wrap", ["bare", "model", "state_dict"])
def test_state_dict_bare_or_under_model_or_state_dict_loads(wrap, task_and_splits, tmp_path):
    """torchvision files are bare state dicts; RepDistiller and mdistiller keep it under "model"."""
    task = task_and_splits[1]
    torch.manual_seed(1)
    model = task.build_model("resnet8", 20)
    state = model.state_dict()
    path = tmp_path / "teacher.pth"
    torch.save(state if wrap == "bare" else {wrap: state, "epoch": 240}, path)
    assert _same_weights(_zoo_teacher(task_and_splits, path, "resnet8").model, model)


def test_repdistiller_last_checkpoint_with_its_options_loads(task_and_splits, tmp_path):
    """RepDistiller's ``<model>_last.pth`` also stores its argparse options under "opt"."""
    task = task_and_splits[1]
    torch.manual_seed(2)
    model = task.build_model("resnet8", 20)
    path = tmp_path / "resnet8_last.pth"
    opt = argparse.Namespace(model="resnet8", learning_rate=0.05, lr_decay_epochs=[150, 180, 210])
    torch.save({"opt": opt, "model": model.state_dict(), "optimizer": {"state": {}, "param_groups": []}}, path)
    assert _same_weights(_zoo_teacher(task_and_splits, path, "resnet8").model, model)


def test_checkpoint_without_a_state_dict_names_its_keys(task_and_splits, tmp_path):
    path = tmp_path / "teacher.pth"
    torch.save({"epoch": 240, "weights": [torch.zeros(2)]}, path)
    with pytest.raises(TeacherMismatchError, match=r"keys \['epoch', 'weights'\] but no state dict") as info:
        _zoo_teacher(task_and_splits, path, "resnet8")
    assert "'model'" in str(info.value) and str(path) in str(info.value)


def test_checkpoint_holding_a_pickled_module_is_not_loaded(task_and_splits, tmp_path):
    path = tmp_path / "teacher.pth"
    torch.save({"epoch": 240, "model": task_and_splits[1].build_model("resnet8", 20)}, path)
    with pytest.raises(TeacherMismatchError, match="weights-only") as info:
        _zoo_teacher(task_and_splits, path, "resnet8")
    assert "weights_only" not in str(info.value)


def test_file_of_another_zoo_architecture_names_both(task_and_splits, tmp_path):
    task = task_and_splits[1]
    path = tmp_path / "ckpt_epoch_240.pth"
    torch.save({"epoch": 240, "model": task.build_model("resnet56", 20).state_dict()}, path)
    with pytest.raises(TeacherMismatchError, match="holds a resnet56 state dict; the protocol expects resnet110"):
        _zoo_teacher(task_and_splits, path, "resnet110")


def test_file_of_another_architecture_is_named_on_the_run_path(tiny_protocol, tmp_path):
    """``--teacher FILE`` (run_one): a 10-class vgg8 file for the protocol's 20-class tinyresnet teacher (the
    architecture is recognised whatever its class count)."""
    task = TASKS.get("classification")()
    path = tmp_path / "teacher.pth"
    torch.save({"model": task.build_model("vgg8", 10).state_dict()}, path)
    with pytest.raises(TeacherMismatchError, match=f"holds a vgg8 state dict; the protocol expects "
                                                   f"{tiny_protocol.teacher.model}"):
        run_one(tiny_protocol, "kd", 0, ResultsStore(tmp_path / "r"), RunOptions(teacher_file=str(path)))
    assert not (tmp_path / "r").exists()


def test_file_matching_no_registered_model_says_so(task_and_splits, tmp_path):
    path = tmp_path / "teacher.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(TeacherMismatchError, match="does not fit resnet8 .*match no registered model"):
        _zoo_teacher(task_and_splits, path, "resnet8")


def test_sha256_pinned_by_a_torchvision_style_name(tmp_path):
    data = tmp_path / "weights.pth"
    torch.save({"w": torch.arange(4.0)}, data)
    sha = sha256_file(data)
    good = tmp_path / f"resnet34-{sha[:8]}.pth"
    data.rename(good)
    assert sha256_pinned_by_name(good) == sha
    bad = tmp_path / "resnet34-b627a593.pth"
    good.rename(bad)
    with pytest.raises(TeacherMismatchError, match=f"starting b627a593, the file's sha256 is {sha}") as info:
        sha256_pinned_by_name(bad)
    assert str(bad) in str(info.value)
    unpinned = tmp_path / "resnet34.pth"
    bad.rename(unpinned)
    with pytest.raises(TeacherMismatchError, match="does not pin a sha256"):
        sha256_pinned_by_name(unpinned)
