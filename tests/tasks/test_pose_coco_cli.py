"""COCO keypoints as a real dataset: ``kdbench run --protocol pose-smoke --dataset coco_keypoints``.

The fixtures are generated figure crops written in the real ``person_keypoints_<split>.json``
format by :func:`tasks.pose.coco_keypoints.write_crops_as_coco` (the writer the figures round-trip
through), or random keypoints under COCO's own 17 person keypoint names. The dataset's OKS
sigmas and flip pairs come from the file's keypoint names (:func:`coco_keypoints.keypoint_sigmas`,
:func:`coco_keypoints.flip_pairs`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.errors import DataError
from bench.protocol import get_protocol
from bench.results import iter_records
from tasks.pose import coco_keypoints, figures
from tasks.pose.task import load_coco_keypoints_dataset


def write_figures_as_coco(root: Path, n_train: int, n_val: int = 8) -> Path:
    """Figure crops as COCO keypoints folders ``train2017`` and ``val2017`` (14 figure keypoints)."""
    for split, count, seed in (("train2017", n_train, 3), ("val2017", n_val, 4)):
        images, keypoints = figures.generate_crops(count, seed=seed)
        coco_keypoints.write_crops_as_coco(images, keypoints, root, split)
    return root


def write_coco_person(root: Path, n: int = 4) -> Path:
    """Random 64x48 images with COCO's 17 person keypoints (names and skeleton-less category)."""
    rng = np.random.default_rng(0)
    k = len(coco_keypoints.COCO_PERSON_KEYPOINTS)
    for split in ("train2017", "val2017"):
        images = rng.integers(0, 256, (n, 3, 64, 48), dtype=np.uint8)
        keypoints = np.concatenate([rng.uniform(4, 40, (n, k, 2)), np.full((n, k, 1), 2.0)], axis=2)
        coco_keypoints.write_crops_as_coco(images, keypoints, root, split, coco_keypoints.COCO_PERSON_KEYPOINTS, ())
    return root


def test_coco_keypoints_end_to_end_through_the_cli(tmp_path, capsys):
    """One seed of FPD (heatmap distillation from a teacher trained on the same crops) on pose-smoke's
    derived protocol: a record under ``pose-smoke+coco_keypoints@v<N>``, its own hash, finite metrics."""
    batch = get_protocol("pose-smoke").schedule.batch_size
    root, results = write_figures_as_coco(tmp_path / "coco", n_train=batch + 4), tmp_path / "results"
    code = main(["run", "--quiet", "--protocol", "pose-smoke", "--method", "fpd", "--dataset", "coco_keypoints",
                 "--data-root", str(root), "--seeds", "0", "--results", str(results)])
    assert code == 0, capsys.readouterr()
    (record,) = iter_records(results)
    base = get_protocol("pose-smoke")
    assert record["protocol"]["key"] == f"pose-smoke+coco_keypoints@v{base.version}"
    assert record["protocol"]["hash"] == get_protocol("pose-smoke+coco_keypoints").spec_hash != base.spec_hash
    assert set(record["metrics"]) == set(base.metrics)
    assert all(v is None or np.isfinite(v) for v in record["metrics"].values())


def test_figures_written_as_coco_load_with_the_figures_sigmas_and_flip_pairs(tmp_path):
    splits = load_coco_keypoints_dataset(str(write_figures_as_coco(tmp_path / "coco", n_train=3, n_val=2)))
    assert splits["train"].classes == figures.KEYPOINTS
    assert splits["train"].inputs.shape == (3, 3, 64, 48) and splits["test"].targets.shape == (2, 14, 3)
    assert splits["val"].extra["sigmas"] == figures.SIGMAS
    assert splits["val"].extra["flip_pairs"] == figures.FLIP_PAIRS  # derived from the l_/r_ names


def test_coco_person_keypoints_get_cocos_published_sigmas_and_left_right_pairs(tmp_path):
    split = load_coco_keypoints_dataset(str(write_coco_person(tmp_path / "coco")))["train"]
    names = coco_keypoints.COCO_PERSON_KEYPOINTS
    assert split.classes == names and split.extra["sigmas"] == coco_keypoints.COCO_PERSON_SIGMAS
    assert len(split.extra["sigmas"]) == 17
    pairs = split.extra["flip_pairs"]
    assert len(pairs) == 8 and all(names[a] == "left_" + names[b][len("right_"):] for a, b in pairs)


def edit_category(root: Path, split: str, **changes) -> Path:
    path = root / "annotations" / f"person_keypoints_{split}.json"
    data = json.loads(path.read_text())
    data["categories"][0].update(changes)
    path.write_text(json.dumps(data))
    return path


def test_unknown_keypoints_need_sigmas_and_a_sigmas_list_is_used(tmp_path):
    root = write_figures_as_coco(tmp_path / "coco", n_train=2, n_val=2)
    names = [f"part_{i}" for i in range(len(figures.KEYPOINTS))]
    for split in ("train2017", "val2017"):
        path = edit_category(root, split, keypoints=names)
    with pytest.raises(DataError, match=r"person_keypoints_train2017\.json.*no OKS sigmas.*part_0.*'sigmas'"):
        load_coco_keypoints_dataset(str(root))
    sigmas = [0.05 + 0.01 * i for i in range(len(names))]
    for split in ("train2017", "val2017"):
        edit_category(root, split, sigmas=sigmas)
    assert load_coco_keypoints_dataset(str(root))["test"].extra["sigmas"] == tuple(sigmas)
    edit_category(root, "val2017", sigmas=sigmas[:-1])
    with pytest.raises(DataError, match=rf"{path}.*'sigmas'.*need {len(names)} finite numbers > 0"):
        load_coco_keypoints_dataset(str(root))


def test_a_left_keypoint_without_its_right_one_is_refused_naming_the_file():
    names = ("nose", "left_eye", "right_eye", "left_ear")
    with pytest.raises(DataError, match=r"f\.json: keypoint 'left_ear' has no mirror 'right_ear'"):
        coco_keypoints.flip_pairs(names, "f.json")
    assert coco_keypoints.flip_pairs(names[:3], "f.json") == ((1, 2),)


def test_a_split_with_other_keypoints_is_refused_naming_both_files(tmp_path):
    root = write_figures_as_coco(tmp_path / "coco", n_train=2, n_val=2)
    edit_category(root, "val2017", keypoints=list(reversed(figures.KEYPOINTS)))
    with pytest.raises(DataError, match=r"person_keypoints_val2017\.json.*person_keypoints_train2017\.json"):
        load_coco_keypoints_dataset(str(root))


def test_missing_data_root_names_the_pose_layout(tmp_path, capsys):
    code = main(["run", "--quiet", "--protocol", "pose-smoke", "--method", "baseline", "--dataset", "coco_keypoints",
                 "--results", str(tmp_path / "r")])
    assert code == 2
    assert "person_keypoints_" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
