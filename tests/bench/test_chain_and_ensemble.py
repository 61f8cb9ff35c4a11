"""The engine's procedures beyond one teacher: the teacher-assistant chain (trained in order,
assistants cached by recipe), the ensemble (label spaces checked, its own accuracy), and the
checks that reject a bad chain or a mismatched teacher before any training."""

import dataclasses
import json

import pytest
import torch

from bench.distill import EnsembleModel
from bench.errors import ConfigError, TeacherMismatchError
from bench.protocol import Protocol, TeacherRecipe, from_dict, get_protocol
from bench.results import ResultsStore
from bench.runner import RunOptions, Workspace, build_method, run_one, validate_chain
from bench.teachers import Teacher, TeacherZoo, check_label_space


@pytest.fixture
def spy_training(monkeypatch):
    """Records (source, model) of every teacher or assistant the zoo trains, in order."""
    calls = []
    original = TeacherZoo._train

    def spy(self, protocol, task, splits, recipe, *args, **kwargs):
        calls.append((kwargs.get("source", "zoo"), recipe.model))
        return original(self, protocol, task, splits, recipe, *args, **kwargs)

    monkeypatch.setattr(TeacherZoo, "_train", spy)
    return calls


def test_chain_trains_its_stages_in_order_then_reuses_the_cached_assistant(tiny_protocol, spy_training, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("KDBENCH_CACHE", str(tmp_path))  # nothing cached yet
    method = build_method(tiny_protocol, "takd")
    assert method.hparams["assistants"] == ["tinyresnet_16"]
    chain = Workspace(tiny_protocol, RunOptions()).teaching(method)
    assert [(role, t.model_name) for role, t in chain.stages] == [("teacher", "tinyresnet_24"),
                                                                   ("assistant", "tinyresnet_16")]
    assert spy_training == [("zoo", "tinyresnet_24"), ("assistant", "tinyresnet_16")]
    meta = json.loads(next((tmp_path / "teachers" / "assistants").glob("*.json")).read_text())
    assert meta["taught_by"] == chain.stages[0][1].sha256  # the assistant learnt from this teacher
    again = Workspace(tiny_protocol, RunOptions()).teaching(method)
    assert spy_training == [("zoo", "tinyresnet_24"), ("assistant", "tinyresnet_16")]  # nothing retrained
    assert again.stages[1][1].sha256 == chain.stages[1][1].sha256
    assert again.teachers_of_student[0].model_name == "tinyresnet_16"  # the student learns from the assistant


def test_takd_record_carries_the_chain_and_the_cost_of_every_stage(tiny_protocol, tmp_path):
    record = run_one(tiny_protocol, "takd", 0, ResultsStore(tmp_path))
    stages = record["cost"]["stages"]
    assert [s["stage"] for s in stages] == ["teacher", "assistant", "student"]
    assert all(s["train_seconds"] > 0 for s in stages)
    assert record["cost"]["total_train_seconds"] == pytest.approx(sum(s["train_seconds"] for s in stages))
    assert record["teaching"]["kind"] == "chain"
    assert [s["model"] for s in record["teaching"]["stages"]] == ["tinyresnet_24", "tinyresnet_16"]
    assert record["teacher"]["model"] == "tinyresnet_24"
    assert record["method"]["hparams"]["assistants"] == ["tinyresnet_16"]


def test_ensemble_record_carries_its_members_and_its_own_accuracy(tiny_protocol, tmp_path):
    record = run_one(tiny_protocol, "mt-avg", 0, ResultsStore(tmp_path))
    teaching = record["teaching"]
    assert teaching["kind"] == "ensemble" and len(teaching["stages"]) == 3
    assert [(s["model"], s["seed"]) for s in teaching["stages"]] == [
        ("tinyresnet_24", 0), ("tinyresnet_16", 0), ("tinyresnet_24", 1)]
    assert set(teaching["ensemble_metrics"]) == {"top1", "top5"}
    assert record["teacher"] is None
    assert [s["stage"] for s in record["cost"]["stages"]] == ["member", "member", "member", "student"]


def test_ensemble_model_averages_the_members_distributions():
    torch.manual_seed(0)
    members = [torch.nn.Linear(4, 3) for _ in range(3)]
    x = torch.randn(5, 4)
    expected = torch.stack([m(x).softmax(1) for m in members]).mean(0)
    assert torch.allclose(EnsembleModel(members)(x).exp(), expected, atol=1e-6)


@pytest.mark.parametrize("chain,culprit", [
    (("tinyresnet_32",), "tinyresnet_32"),  # larger than the teacher
    (("tinyresnet_8",), "tinyresnet_8"),  # the student's own size
    (("tinyresnet_12", "tinyresnet_16"), "tinyresnet_12"),  # out of order
])
def test_a_chain_whose_assistant_is_not_between_is_rejected(smoke_protocol, chain, culprit):
    from bench.registry import TASKS

    with pytest.raises(ConfigError, match=f"assistant {culprit} is not between"):
        validate_chain(TASKS.get("classification")(), "tinyresnet_24", chain, "tinyresnet_8", 20)


def test_a_bad_chain_stops_the_run_before_any_training(tiny_protocol, spy_training, tmp_path):
    options = RunOptions(hparams={"assistants": ["tinyresnet_48"]})
    with pytest.raises(ConfigError, match="tinyresnet_48 .* is not between tinyresnet_24 and tinyresnet_8"):
        run_one(tiny_protocol, "takd", 0, ResultsStore(tmp_path), options)
    assert spy_training == []


def test_methods_that_need_an_ensemble_or_chain_say_which_key_is_missing():
    protocol = get_protocol("pose-smoke")
    with pytest.raises(ConfigError, match="does not apply to task 'pose'"):
        build_method(protocol, "mt-avg")
    gap = get_protocol("classification-gap")
    with pytest.raises(ConfigError, match="key 'ensemble'"):
        build_method(gap, "ca-mkd")
    with pytest.raises(ConfigError, match="key 'assistants'"):
        build_method(get_protocol("segmentation-smoke"), "takd")


def test_teacher_file_with_another_label_space_is_rejected(tiny_protocol, tmp_path):
    from bench.registry import TASKS

    task = TASKS.get("classification")()
    path = tmp_path / "ten_classes.pt"
    torch.save(task.build_model("tinyresnet_24", 10).state_dict(), path)  # the dataset has 20 classes
    with pytest.raises(TeacherMismatchError, match="different label space: .* predicts 10 classes, .* has 20"):
        run_one(tiny_protocol, "kd", 0, ResultsStore(tmp_path / "r"), RunOptions(teacher_file=str(path)))


def test_ensemble_files_are_checked_for_count_and_label_space(tiny_protocol, tmp_path):
    from bench.registry import TASKS

    task = TASKS.get("classification")()
    files = []
    for i, recipe in enumerate(tiny_protocol.ensemble):
        files.append(tmp_path / f"member{i}.pt")
        torch.save(task.build_model(recipe.model, 20 if i != 2 else 5).state_dict(), files[-1])
    with pytest.raises(ConfigError, match="has 3 ensemble teachers .* but 2 ensemble files"):
        run_one(tiny_protocol, "mt-avg", 0, ResultsStore(tmp_path / "r"),
                RunOptions(ensemble_files=tuple(map(str, files[:2]))))
    with pytest.raises(TeacherMismatchError, match="member2.pt has a different label space"):
        run_one(tiny_protocol, "mt-avg", 0, ResultsStore(tmp_path / "r"),
                RunOptions(ensemble_files=tuple(map(str, files))))
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_check_label_space_names_the_teacher_and_both_class_lists():
    teacher = Teacher(torch.nn.Linear(1, 1), "tinyresnet_24", "0" * 64, "zoo", classes=("cat", "dog"))
    expected = "ensemble teacher 1 .* 2 classes \\(cat, dog\\), .* 3 \\(a, b, c\\)"
    with pytest.raises(TeacherMismatchError, match=expected):
        check_label_space(teacher, ("a", "b", "c"), "ensemble teacher 1")
    check_label_space(teacher, ("cat", "dog"), "ensemble teacher 1")


def test_protocol_ensemble_round_trips_and_old_hashes_are_kept(smoke_protocol):
    data = smoke_protocol.to_dict()
    assert from_dict(data) == smoke_protocol
    data["ensemble"][0]["colour"] = 1
    with pytest.raises(ConfigError, match="protocol.ensemble\\[0\\]: unknown key 'colour'"):
        from_dict(data)
    plain = dataclasses.replace(smoke_protocol, ensemble=(), assistants=(), assistant_sweep=())
    spec = plain.to_dict()
    for key in ("description", "seeds", "ensemble", "assistants", "assistant_sweep"):
        spec.pop(key)
    for key in ("normalization", "teacher_file"):  # issue 13's protocol fields, left out of the hash when empty
        assert not spec.pop(key, None)
    assert spec.pop("feature_stages") == 0  # issue 14's, left out of the hash at 0
    assert spec.pop("deterministic") is False  # issue 16's, left out of the hash when false
    for schedule in (spec["schedule"], spec["teacher"]["schedule"]):  # issue 13's schedule fields, at default
        assert schedule.pop("lr_schedule") == "cosine" and schedule.pop("milestones") == ()
        assert schedule.pop("gamma") == 0.1 and schedule.pop("lr_by_model") == ()
        assert schedule.pop("drop_last") is True
    import hashlib

    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=list)
    assert plain.spec_hash == hashlib.sha256(canonical.encode()).hexdigest()  # the fields did not exist in v1
    assert smoke_protocol.spec_hash != plain.spec_hash


def test_an_ensemble_of_one_is_refused(smoke_protocol):
    with pytest.raises(ConfigError, match="'ensemble' needs at least 2 teachers"):
        dataclasses.replace(smoke_protocol, ensemble=(TeacherRecipe("tinyresnet_24", smoke_protocol.schedule),))


def test_every_registered_chain_is_valid():
    from bench.registry import PROTOCOLS, TASKS

    for name in PROTOCOLS.names():
        protocol: Protocol = get_protocol(name)
        task = TASKS.get(protocol.task)()
        for chain in [protocol.assistants, *((a,) for a in protocol.assistant_sweep)]:
            if chain:
                validate_chain(task, protocol.teacher.model, chain, protocol.student, 10)


def test_ensemble_from_user_files(tiny_protocol, tmp_path):
    from bench.registry import TASKS

    task = TASKS.get("classification")()
    files = []
    for i, recipe in enumerate(tiny_protocol.ensemble):
        files.append(str(tmp_path / f"member{i}.pt"))
        torch.save(task.build_model(recipe.model, 20).state_dict(), files[-1])
    record = run_one(tiny_protocol, "mt-avg", 0, ResultsStore(tmp_path / "r"), RunOptions(ensemble_files=tuple(files)))
    stages = record["teaching"]["stages"]
    assert [s["source"] for s in stages] == ["file"] * 3
    assert [s["model"] for s in stages] == [r.model for r in tiny_protocol.ensemble]
