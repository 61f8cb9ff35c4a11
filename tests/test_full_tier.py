"""The full tier (issue 13): the published protocols as data, their claims, protocol files, data checks,
teacher look-up, the suite's skipping, and smoke variants trained end to end on format-identical
fixtures (tests/real_formats.py: a CIFAR-100 python-version set; an ImageNet JPEG tree, slow)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

from bench.claims import claim_files, claims_for, load_claims
from bench.cli import main
from bench.datacheck import check_data, locate_data_root
from bench.errors import ConfigError, DataError, UnknownNameError
from bench.full_tier import plan_full
from bench.identity import protocol_spec
from bench.protocol import get_protocol, protocols_of_tier
from bench.protocol_file import read_protocol_file
from bench.registry import METHODS, PROTOCOLS
from bench.teacher_dir import find_teacher_file
from tasks.classification.full.protocols import IMAGENET_PROTOCOL, cifar100_pairs, smoke_variant

from real_formats import (  # noqa: E402  (tests/, the official formats)
    reference_checkpoint,
    small_cifar100,
    write_cifar100,
    write_imagenet,
)

#: the 13 pairs of the CRD tables (/work/shared/reference/paper-tables.md), in our model names
PAIRS = [("wrn_40_2", "wrn_16_2"), ("wrn_40_2", "wrn_40_1"), ("resnet56", "resnet20"), ("resnet110", "resnet20"),
         ("resnet110", "resnet32"), ("resnet32x4", "resnet8x4"), ("vgg13", "vgg8"),
         ("vgg13", "MobileNetV2"), ("ResNet50", "MobileNetV2"), ("ResNet50", "vgg8"),
         ("resnet32x4", "ShuffleNetV1"), ("resnet32x4", "ShuffleNetV2"), ("wrn_40_2", "ShuffleNetV1")]
CIFAR_MEAN_STD = ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))  # RepDistiller dataset/cifar100.py


# ----------------------------------------------------------------------------- the protocols as data

def test_the_thirteen_cifar100_protocols_are_registered_from_one_recipe():
    assert cifar100_pairs() == PAIRS
    full = {p.name for p in protocols_of_tier("full") if p.task == "classification"}
    assert full == {f"cifar100-{t}-{s}" for t, s in PAIRS} | {"imagenet-resnet34-resnet18"}
    for teacher, student in PAIRS:
        p = get_protocol(f"cifar100-{teacher}-{student}")
        assert (p.key, p.tier, p.task, p.student, p.teacher.model) == (
            f"cifar100-{teacher}-{student}@v1", "full", "classification", student, teacher)
        assert p.dataset == {"name": "cifar100", "val_fraction": 0.0}
        assert p.augmentation == "crop32pad4-hflip" and p.normalization == CIFAR_MEAN_STD
        assert p.seeds == (0, 1, 2) and p.primary_metric == "top1"
        assert p.method_overrides == {"kd": {"T": 4.0, "alpha": 0.9}}
        s = p.schedule
        assert (s.epochs, s.batch_size, s.lr, s.momentum, s.weight_decay, s.nesterov) == (240, 64, 0.05, 0.9, 5e-4,
                                                                                           False)
        assert (s.lr_schedule, s.milestones, s.gamma) == ("step", (150, 180, 210), 0.1)
        assert s.lr_for(student) == (0.01 if student in ("MobileNetV2", "ShuffleNetV1", "ShuffleNetV2") else 0.05)
        assert p.teacher.schedule == s and s.lr_for(teacher) == 0.05  # train_teacher.py: the same recipe
        assert not p.teacher_file  # the suite can train these teachers; users normally give the file


def test_four_stage_pairs_make_every_stage_method_read_four_stages():
    """RepDistiller's feature methods read ``feat[1:-1]``, every stage: ``feature_stages = 4`` for the pairs
    of four-stage models; a method override or the user's hparams still win; other methods are untouched."""
    from bench.runner import build_method

    four = {(t, s) for t, s in cifar100_pairs() if get_protocol(f"cifar100-{t}-{s}").feature_stages == 4}
    assert four == {("vgg13", "vgg8"), ("vgg13", "MobileNetV2"), ("ResNet50", "MobileNetV2"), ("ResNet50", "vgg8")}
    protocol = get_protocol("cifar100-ResNet50-vgg8")
    assert build_method(protocol, "at").hparams["stages"] == 4
    assert build_method(protocol, "at", {"stages": 2}).hparams["stages"] == 2
    assert build_method(protocol, "review-kd").teacher_features[-2:] == ("stage4.preact", "embedding")
    assert "stages" not in build_method(protocol, "kd").hparams
    assert build_method(get_protocol("cifar100-resnet56-resnet20"), "at").hparams["stages"] == 3
    assert "feature_stages" not in protocol_spec(get_protocol("cifar100-resnet56-resnet20"))


def test_the_kd_weights_are_the_papers():
    """CE weight 0.1 and KD weight 0.9 at T=4 (RepDistiller -r 0.1 -a 0.9); T=1 with 0.5/0.5 on ImageNet
    (mdistiller configs/imagenet/r34_r18/kd.yaml), as our kd's (1 - alpha) * CE + alpha * KD."""
    from bench.runner import build_method

    cifar = build_method(get_protocol("cifar100-resnet32x4-resnet8x4"), "kd")
    assert cifar.hparams == {"T": 4.0, "alpha": 0.9}
    imagenet = build_method(get_protocol("imagenet-resnet34-resnet18"), "kd")
    assert imagenet.hparams == {"T": 1.0, "alpha": 0.5}


def test_imagenet_protocol_is_the_torchvision_recipe_with_a_pinned_teacher_file():
    p = get_protocol("imagenet-resnet34-resnet18")
    assert (p.key, p.tier, p.student, p.teacher.model) == ("imagenet-resnet34-resnet18@v1", "full",
                                                           "torchvision_resnet18", "torchvision_resnet34")
    assert p.teacher_file == "resnet34-b627a593.pth" and p.dataset == {"name": "imagenet"}
    s = p.schedule
    assert (s.epochs, s.batch_size, s.lr, s.weight_decay, s.momentum, s.nesterov) == (100, 256, 0.1, 1e-4, 0.9, False)
    assert (s.lr_schedule, s.milestones, s.gamma) == ("step", (30, 60, 90), 0.1)
    assert p.augmentation == "resizedcrop224-hflip"
    assert p.normalization == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def test_teacher_file_enters_the_hash_only_when_set():
    from bench.identity import protocol_spec

    p = get_protocol("imagenet-resnet34-resnet18")
    assert protocol_spec(p)["teacher_file"] == "resnet34-b627a593.pth"
    assert dataclasses.replace(p, teacher_file="resnet34-00000000.pth").spec_hash != p.spec_hash
    assert "teacher_file" not in protocol_spec(get_protocol("cifar100-resnet32x4-resnet8x4"))
    assert "teacher_file" not in protocol_spec(get_protocol("classification-mini"))


def test_smoke_variant_keeps_everything_but_size_and_is_not_registered():
    full = get_protocol("cifar100-vgg13-MobileNetV2")
    smoke = smoke_variant(full, epochs=8, batch_size=16)
    assert (smoke.tier, smoke.name) == ("smoke", "cifar100-vgg13-MobileNetV2-smoke")
    assert smoke.name not in PROTOCOLS and smoke.name not in {p.name for p in protocols_of_tier("smoke")}
    for field in ("task", "dataset", "student", "augmentation", "normalization", "method_overrides", "metrics"):
        assert getattr(smoke, field) == getattr(full, field), field
    assert smoke.teacher.model == full.teacher.model
    s = smoke.schedule
    assert (s.epochs, s.batch_size, s.milestones) == (8, 16, (5, 6, 7))  # 150/180/210 of 240, scaled
    assert (s.lr_schedule, s.gamma, s.lr_by_model, s.nesterov) == ("step", 0.1, full.schedule.lr_by_model, False)
    assert s.lr_for("MobileNetV2") == 0.01


# ----------------------------------------------------------------------------- claims

def test_every_claim_names_a_registered_protocol_and_method():
    files = claim_files()
    assert {f.name for f in files} >= {"published_crd_cifar100.json", "published_imagenet_r34_r18.json"}
    for path in files:
        for claim in load_claims(path):
            assert claim.protocol in PROTOCOLS, claim
            assert claim.method is None or claim.method in METHODS, claim
            assert claim.source and claim.metric == get_protocol(claim.protocol).primary_metric


def test_each_full_protocol_carries_teacher_student_and_kd_claims():
    for protocol in protocols_of_tier("full"):
        claims = claims_for(protocol.name)
        roles = {c.label: c for c in claims}
        assert roles["teacher"].role == "teacher" and roles["student"].method == "baseline", protocol.name
        if protocol.task == "classification":  # the detection and segmentation tables publish no KD row
            assert roles["KD"].method == "kd" and roles["KD"].value is not None, protocol.name


def test_claims_as_the_readmes_print_them():
    """Spot checks against the RepDistiller README (commit 0eb3a956) and mdistiller's (a08d46f1)."""
    def value(protocol, label):
        return next(c.value for c in claims_for(protocol) if c.label == label)

    assert value("cifar100-resnet32x4-resnet8x4", "teacher") == 79.42
    assert value("cifar100-resnet32x4-resnet8x4", "KD") == 73.33
    assert value("cifar100-resnet32x4-resnet8x4", "CRD") == 75.51
    assert value("cifar100-resnet32x4-resnet8x4", "DKD") == 76.32
    assert value("cifar100-vgg13-MobileNetV2", "student") == 64.60
    assert value("cifar100-wrn_40_2-ShuffleNetV1", "NST") == 74.89
    assert value("cifar100-resnet110-resnet20", "DKD") is None  # mdistiller has no such column
    assert value("cifar100-wrn_40_2-wrn_40_1", "FSP") is None  # the README prints 0.00
    dkd = next(c for c in claims_for("cifar100-resnet32x4-ShuffleNetV2") if c.label == "DKD")
    assert dkd.value == 77.07 and "MobileNet-V2" in dkd.note and "ShuffleNetV2" in dkd.note
    assert value("imagenet-resnet34-resnet18", "KD") == 71.03 and value("imagenet-resnet34-resnet18", "DKD") == 71.70


def test_a_malformed_claims_file_is_named(tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"metric": "top1", "sources": {"x": {"citation": "c"}}, "tables": [
        {"columns": [{"protocol": "p"}], "rows": [{"label": "KD", "source": "x", "values": [1.0, 2.0]}]}]}))
    with pytest.raises(DataError, match=r"claims.json.*'KD'.*2 values for 1 columns"):
        load_claims(path)


# ----------------------------------------------------------------------------- protocol files

def protocol_data(name="my-cifar", **changes):
    data = {"name": name, "task": "classification", "tier": "full", "version": 1,
            "dataset": {"name": "cifar100", "val_fraction": 0.0}, "student": "resnet8x4",
            "teacher": {"model": "resnet32x4", "schedule": {"epochs": 2, "batch_size": 8, "lr": 0.05}},
            "schedule": {"epochs": 2, "batch_size": 8, "lr": 0.05, "lr_schedule": "step", "milestones": [1]},
            "augmentation": "crop32pad4-hflip", "metrics": ["top1", "top5"], "primary_metric": "top1",
            "seeds": [0]}
    data.update(changes)
    return data


def write_toml(path: Path, data: dict) -> Path:
    def value(v):
        return json.dumps(v)  # JSON numbers, strings and lists are TOML too

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {value(vv)}" for kk, vv in v.items() if not isinstance(vv, dict)]
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    lines += [f"[{k}.{kk}]", *(f"{a} = {value(b)}" for a, b in vv.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_protocol_file_is_hashed_like_the_built_in_protocol(tmp_path):
    builtin = get_protocol("imagenet-resnet34-resnet18")
    assert read_protocol_file(IMAGENET_PROTOCOL).spec_hash == builtin.spec_hash
    as_json = tmp_path / "imagenet.json"
    as_json.write_text(json.dumps(builtin.to_dict()))
    assert read_protocol_file(as_json).spec_hash == builtin.spec_hash
    toml = read_protocol_file(write_toml(tmp_path / "p.toml", protocol_data()))
    json_file = tmp_path / "p.json"
    json_file.write_text(json.dumps(protocol_data()))
    assert toml.spec_hash == read_protocol_file(json_file).spec_hash and toml.key == "my-cifar@v1"


@pytest.mark.parametrize("changes, error, message", [
    ({"epochs": 3}, ConfigError, r"unknown key 'epochs'; valid keys: .*augmentation"),
    ({"dataset": {"name": "cifar1000"}}, UnknownNameError, r"unknown dataset 'cifar1000'; valid datasets: .*cifar100"),
    ({"student": "resnet9"}, UnknownNameError, r"unknown model 'resnet9'; valid models: .*resnet8x4"),
    ({"augmentation": "crop"}, ConfigError, r"key 'augmentation': 'crop' is not an augmentation .*crop32pad4-hflip"),
    ({"method_overrides": {"kd": {"tau": 2.0}}}, ConfigError, r"unknown hyperparameter 'tau'; valid: T, alpha"),
    ({"method_overrides": {"dkdd": {}}}, UnknownNameError, r"unknown method 'dkdd'"),
    ({"tier": "huge"}, ConfigError, r"key 'tier' must be one of"),
    ({"feature_stages": 4}, ConfigError, r"key 'feature_stages': 4 stages asked, but model 'resnet8x4' declares 3"),
    ({"feature_stages": -1}, ConfigError, r"key 'feature_stages' must be a whole number >= 0"),
])
def test_protocol_file_errors_name_the_key_and_the_file(tmp_path, changes, error, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(protocol_data(**changes)))
    with pytest.raises(error, match=message) as exc:
        read_protocol_file(path)
    assert "bad.json" in str(exc.value)


def test_protocol_file_syntax_and_name_clash(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ConfigError, match=r"broken.toml is not valid TOML.*line 1"):
        read_protocol_file(broken)
    with pytest.raises(ConfigError, match=r"unknown format '.yaml'"):
        read_protocol_file(tmp_path / "p.yaml")
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps(protocol_data(name="cifar100-resnet32x4-resnet8x4")))
    with pytest.raises(ConfigError, match=r"names the registered protocol 'cifar100-resnet32x4-resnet8x4'"):
        read_protocol_file(clash)


def test_run_refuses_both_or_neither_protocol_option(tmp_path, capsys):
    assert main(["run", "--method", "baseline", "--results", str(tmp_path)]) == 2
    assert "exactly one of --protocol NAME or --protocol-file FILE" in capsys.readouterr().err


# ----------------------------------------------------------------------------- data checks

def test_cifar100_check_reports_counts_layout_and_download_page(tmp_path, capsys):
    write_cifar100(tmp_path, train_per_class=2)
    report = check_data("cifar100", tmp_path)
    assert report.root == tmp_path / "cifar-100-python" and not report.complete
    assert "train: 200 images of 100 classes" in report.found
    assert any("train holds 200 images; the official set has 50,000" in p for p in report.problems)
    assert main(["data", "check", "cifar100", "--data-root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "INCOMPLETE" in out and "https://www.cs.toronto.edu/~kriz/cifar.html" in out
    assert "cifar-100-python/{train, test, meta}" in out


def test_cifar100_check_passes_on_the_official_counts(tmp_path, monkeypatch, capsys):
    from tasks.classification.datacheck import Cifar100Check

    write_cifar100(tmp_path, train_per_class=2)
    monkeypatch.setattr(Cifar100Check, "train_images", 200)
    monkeypatch.setattr(Cifar100Check, "test_images", 100)
    assert main(["data", "check", "cifar100", "--data-root", str(tmp_path / "cifar-100-python")]) == 0
    assert ": complete" in capsys.readouterr().out


def test_missing_or_broken_data_is_reported_naming_the_file(tmp_path, capsys):
    assert main(["data", "check", "cifar100", "--data-root", str(tmp_path / "nowhere")]) == 1
    assert "is not a folder" in capsys.readouterr().out
    folder, _ = write_cifar100(tmp_path)
    (folder / "test").unlink()
    report = check_data("cifar100", tmp_path)
    assert not report.complete and str(folder / "test") in report.problems[0]
    assert main(["data", "check", "mnist", "--data-root", str(tmp_path)]) == 2
    assert re.search(r"unknown dataset with a data check 'mnist'.*cifar10, cifar100, imagefolder, imagenet",
                     capsys.readouterr().err)


def test_imagenet_and_imagefolder_checks(tmp_path, monkeypatch):
    from tasks.classification.datacheck import ImageNetCheck

    write_imagenet(tmp_path / "imagenet")
    assert locate_data_root("imagenet", str(tmp_path)) == str(tmp_path / "imagenet")
    report = check_data("imagenet", tmp_path)
    assert not report.complete and "train: 12 images in 3 class folders" in report.found
    assert any("the official set has 1,000" in p for p in report.problems)
    monkeypatch.setattr(ImageNetCheck, "expected", {"train": 12, "val": 6})
    monkeypatch.setattr(ImageNetCheck, "classes", 3)
    assert check_data("imagenet", tmp_path).complete
    (tmp_path / "imagenet" / "val" / "stray.JPEG").write_bytes(b"")
    next((tmp_path / "imagenet" / "val" / "n01440764").iterdir()).unlink()
    assert any("sort them into class folders" in p for p in check_data("imagenet", tmp_path).problems)

    tree = tmp_path / "folder"
    (tree / "train" / "cat").mkdir(parents=True)
    (tree / "train" / "cat" / "a.png").write_bytes(b"")
    report = check_data("imagefolder", tree)
    assert not report.complete and any("test does not exist" in p for p in report.problems)
    (tree / "test" / "cat").mkdir(parents=True)
    (tree / "test" / "cat" / "b.png").write_bytes(b"")
    assert check_data("imagefolder", tree).complete


# ----------------------------------------------------------------------------- teachers and the suite's plan

def test_teacher_dir_layouts(tmp_path):
    protocol = get_protocol("cifar100-resnet32x4-resnet8x4")
    assert find_teacher_file(tmp_path, protocol) is None
    mdistiller = tmp_path / "cifar_teachers" / "resnet32x4_vanilla" / "ckpt_epoch_240.pth"
    mdistiller.parent.mkdir(parents=True)
    mdistiller.write_bytes(b"x")
    assert find_teacher_file(tmp_path, protocol) == mdistiller
    plain = tmp_path / "resnet32x4.pth"
    plain.write_bytes(b"x")
    assert find_teacher_file(tmp_path, protocol) == plain  # <model>.pth first
    imagenet = get_protocol("imagenet-resnet34-resnet18")
    assert find_teacher_file(tmp_path, imagenet) is None
    (tmp_path / "resnet34-b627a593.pth").write_bytes(b"x")
    assert find_teacher_file(tmp_path, imagenet) == tmp_path / "resnet34-b627a593.pth"


def test_full_plan_skips_what_has_no_data_or_no_pinned_teacher(tmp_path, monkeypatch):
    from tasks.classification.datacheck import Cifar100Check

    full = [p for p in protocols_of_tier("full") if p.task == "classification"]
    planned, skipped = plan_full(full, None)
    assert not planned and len(skipped) == 14
    assert all("no --data-root was given" in s.reason for s in skipped)

    write_cifar100(tmp_path, train_per_class=1)
    planned, skipped = plan_full(full, str(tmp_path))
    assert not planned
    cifar = [s for s in skipped if s.protocol.dataset["name"] == "cifar100"]
    assert len(cifar) == 13 and all("the official set has 50,000" in s.reason for s in cifar)

    monkeypatch.setattr(Cifar100Check, "train_images", 100)
    monkeypatch.setattr(Cifar100Check, "test_images", 100)
    (tmp_path / "teachers").mkdir()
    (tmp_path / "teachers" / "vgg13.pth").write_bytes(b"x")
    planned, skipped = plan_full(full, str(tmp_path), str(tmp_path / "teachers"))
    assert len(planned) == 13 and {p.data_root for p in planned} == {str(tmp_path / "cifar-100-python")}
    files = {p.protocol.name: p.teacher_file for p in planned}
    assert files["cifar100-vgg13-vgg8"] == str(tmp_path / "teachers" / "vgg13.pth")
    assert files["cifar100-resnet32x4-resnet8x4"] is None  # trained by the suite
    [imagenet] = skipped
    assert "imagenet" in imagenet.reason  # no ImageNet folder in the root


def test_suite_full_without_data_skips_everything_and_succeeds(tmp_path, capsys):
    code = main(["suite", "--tier", "full", "--results", str(tmp_path / "r"), "--quiet", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "full tier: 0 protocol(s) to run, 16 skipped" in out  # 14 classification, COCO, Cityscapes
    assert "skip cifar100-resnet32x4-resnet8x4@v1: reads the real dataset 'cifar100' and no --data-root" in out
    assert not (tmp_path / "r" / "cifar100-resnet32x4-resnet8x4@v1").exists()


def test_pinned_teacher_is_required_before_anything_runs(tmp_path, capsys):
    root = write_imagenet(tmp_path / "imagenet")
    code = main(["run", "--protocol", "imagenet-resnet34-resnet18", "--method", "kd", "--data-root", str(root),
                 "--results", str(tmp_path / "r"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "resnet34-b627a593.pth" in err and "--teacher" in err
    wrong = tmp_path / "resnet34-b627a593.pth"
    torch.save({"x": torch.zeros(1)}, wrong)  # its sha256 does not start with b627a593
    code = main(["run", "--protocol", "imagenet-resnet34-resnet18", "--method", "kd", "--data-root", str(root),
                 "--teacher", str(wrong), "--results", str(tmp_path / "r"), "--quiet"])
    assert code == 2 and "b627a593" in capsys.readouterr().err


# ----------------------------------------------------------------------------- smoke variants, end to end

@pytest.mark.parametrize("teacher, student", [("resnet32x4", "resnet8x4"), ("vgg13", "MobileNetV2")])
def test_smoke_variant_trains_end_to_end_from_a_protocol_file(tmp_path, teacher, student, capsys,
                                                              no_latency_measurement):
    """The full protocol's smoke variant (2 epochs, step decay after the first, batch 8) written as a
    protocol file and run by the CLI with a reference-format teacher file on the CIFAR-100 fixture:
    the same models, loader, random-crop augmentation and normalisation as the full protocol."""
    from bench.results import iter_records

    full = get_protocol(f"cifar100-{teacher}-{student}")
    smoke = smoke_variant(full, epochs=2, batch_size=8)
    assert smoke.schedule.milestones == (1,)
    protocol_file = tmp_path / "smoke.json"
    protocol_file.write_text(json.dumps(smoke.to_dict()))
    root, results = small_cifar100(tmp_path / "data"), tmp_path / "results"
    code = main(["run", "--protocol-file", str(protocol_file), "--method", "kd", "--data-root", str(root),
                 "--teacher", str(reference_checkpoint(tmp_path / f"{teacher}.pth", teacher)), "--seeds", "0",
                 "--results", str(results), "--quiet"])
    assert code == 0, capsys.readouterr()
    [record] = list(iter_records(results))
    assert record["protocol"]["key"] == f"{full.name}-smoke@v1" and record["protocol"]["hash"] == smoke.spec_hash
    assert str(protocol_file.resolve()) in record["protocol"]["source"]
    assert record["teacher"]["model"] == teacher and record["teacher"]["source"] == "file"
    assert record["efficiency"]["student_model"] == student
    assert record["method"]["hparams"] == {"T": 4.0, "alpha": 0.9}
    assert record["cost"]["steps"] == 2 * (32 // 8)
    assert record["cost"]["teacher_output_cache"] is False  # random crops: the teacher ran live
    assert 0.0 <= record["metrics"]["top1"] <= 100.0 and record["identity"]["data"]


@pytest.mark.slow
def test_imagenet_smoke_variant_end_to_end(tmp_path, no_latency_measurement):
    """ImageNet's smoke variant on an ImageNet-layout JPEG tree: streamed loading, random resized crops of
    224, the torchvision models, and a teacher file pinned by its own sha256 prefix."""
    from bench.paths import sha256_file
    from bench.registry import MODELS
    from bench.results import ResultsStore
    from bench.runner import RunOptions, run_one

    root = write_imagenet(tmp_path / "imagenet")
    torch.manual_seed(0)
    draft = tmp_path / "draft.pth"
    torch.save(MODELS.get("torchvision_resnet34")(num_classes=3).state_dict(), draft)
    teacher = draft.rename(tmp_path / f"resnet34-{sha256_file(draft)[:8]}.pth")
    smoke = smoke_variant(get_protocol("imagenet-resnet34-resnet18"), epochs=2, batch_size=4,
                          teacher_file=teacher.name)
    options = RunOptions(data_root=str(root), teacher_file=str(teacher), workers=0)
    record = run_one(smoke, "kd", 0, ResultsStore(tmp_path / "r"), options)
    assert record["teacher"]["sha256"].startswith(teacher.name.split("-")[1][:8])
    assert record["cost"]["steps"] == 2 * (12 // 4) and record["method"]["hparams"] == {"T": 1.0, "alpha": 0.5}
    assert record["efficiency"]["student_model"] == "torchvision_resnet18"


def test_suite_runs_protocol_files_and_skips_a_full_one_without_complete_data(tmp_path, capsys,
                                                                               no_latency_measurement):
    from bench.results import iter_records

    smoke = smoke_variant(get_protocol("cifar100-vgg13-MobileNetV2"), epochs=2, batch_size=8)
    files = {}
    for name, protocol in (("smoke", smoke), ("full", dataclasses.replace(smoke, name="my-full", tier="full"))):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(protocol.to_dict()))
    root, results = small_cifar100(tmp_path / "data"), tmp_path / "results"
    code = main(["suite", "--protocol-file", str(files["smoke"]), "--protocol-file", str(files["full"]),
                 "--methods", "baseline", "--data-root", str(root), "--results", str(results), "--jobs", "1",
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"skip my-full@v1: cifar100 in .*cifar-100-python is incomplete \(train holds 32 images", out)
    [record] = list(iter_records(results))
    assert record["protocol"]["key"] == smoke.key and str(files["smoke"].resolve()) in record["protocol"]["source"]
    assert (results / "leaderboard" / "README.md").is_file()


def test_a_protocol_file_is_never_published(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(protocol_data()))
    assert main(["suite", "--protocol-file", str(path), "--publish"]) == 2
    assert "--publish with --protocol-file" in capsys.readouterr().err
