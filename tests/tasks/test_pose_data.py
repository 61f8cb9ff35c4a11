"""Pose data: the generated figures and the COCO person-keypoints reader/writer (fixtures in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.errors import DataError
from tasks.pose import coco_keypoints, figures


@pytest.fixture(scope="module")
def crop_set():
    """120 crops at 64x48 (shared: generating is the slow part)."""
    return figures.generate_crops(120, seed=7)


# ----------------------------------------------------------------------------- generator


def test_generator_is_deterministic_and_seed_dependent():
    a_img, a_kp = figures.generate_crops(8, seed=3)
    b_img, b_kp = figures.generate_crops(8, seed=3)
    c_img, c_kp = figures.generate_crops(8, seed=4)
    assert a_img.shape == (8, 3, 64, 48) and a_img.dtype == np.uint8
    assert a_kp.shape == (8, len(figures.KEYPOINTS), 3) and a_kp.dtype == np.float32
    assert np.array_equal(a_img, b_img) and np.array_equal(a_kp, b_kp)
    assert not np.array_equal(a_img, c_img) and not np.array_equal(a_kp, c_kp)
    img, kp = figures.generate_crops(3, seed=3, height=96, width=80)
    assert img.shape == (3, 3, 96, 80) and kp.shape[:2] == (3, len(figures.KEYPOINTS))


def test_keypoint_metadata_is_consistent():
    k = len(figures.KEYPOINTS)
    assert k >= 10 and len(set(figures.KEYPOINTS)) == k
    assert len(figures.SIGMAS) == k and all(0.02 <= s <= 0.11 for s in figures.SIGMAS)
    for a, b in figures.SKELETON:
        assert 0 <= a < k and 0 <= b < k and a != b
    flipped = set()
    for a, b in figures.FLIP_PAIRS:
        assert figures.KEYPOINTS[a].startswith("l_") and figures.KEYPOINTS[b] == "r_" + figures.KEYPOINTS[a][2:]
        flipped |= {a, b}
    assert all(not name.startswith(("l_", "r_")) for i, name in enumerate(figures.KEYPOINTS) if i not in flipped)


def test_visibility_flags_and_coordinates(crop_set):
    _, kp = crop_set
    v = kp[..., 2]
    assert set(np.unique(v).tolist()) == {0.0, 1.0, 2.0}  # each of the three appears
    assert (v == 2).mean() > 0.6  # mostly visible
    assert 0.02 < (v == 0).any(axis=1).mean() < 0.6  # some crops truncated, not most
    assert 0.05 < (v == 1).any(axis=1).mean() < 0.7  # some crops occluded
    # unlabelled (truncated) keypoints are zeroed; labelled ones lie inside the crop
    assert (kp[v == 0][:, :2] == 0).all()
    labelled = kp[v > 0]
    assert (labelled[:, 0] >= 0).all() and (labelled[:, 0] < 48).all()
    assert (labelled[:, 1] >= 0).all() and (labelled[:, 1] < 64).all()
    # main figure roughly centred: the median visible keypoint is near the crop centre
    assert abs(np.median(labelled[:, 0]) - 24) < 6 and abs(np.median(labelled[:, 1]) - 32) < 8


def test_visible_keypoints_sit_on_the_figure(crop_set):
    """A visible head keypoint is the centre of a one-colour disc: its right neighbour has the same colour."""
    images, kp = crop_set
    i, j = np.nonzero(kp[..., 2] == 2)
    col = kp[i, j, 0].astype(int)
    row = kp[i, j, 1].astype(int)
    # the head disc is one colour: neighbours of a visible head keypoint match it closely
    heads = j == 0
    centre = images[i[heads], :, row[heads], col[heads]].astype(int)
    right = images[i[heads], :, row[heads], np.minimum(col[heads] + 1, 47)].astype(int)
    assert np.median(np.abs(centre - right).sum(axis=1)) < 30


def test_truncated_figures_stay_partly_in_the_crop():
    """Truncated figures are only partly outside: crops with v=0 joints still have labelled ones."""
    _, kp = figures.generate_crops(200, seed=11)
    v = kp[..., 2]
    # rows with truncation still have labelled joints (the figure is partly inside)
    truncated = (v == 0).any(axis=1)
    assert truncated.any() and ((v > 0).sum(axis=1)[truncated] > 0).mean() > 0.8


# ----------------------------------------------------------------------------- COCO writer and reader


def _write(tmp_path: Path, n: int = 6, seed: int = 2):
    images, kp = figures.generate_crops(n, seed=seed)
    root = coco_keypoints.write_crops_as_coco(images, kp, tmp_path / "coco", "val")
    return images, kp, root


def test_to_coco_keypoints_layout():
    _, kp = figures.generate_crops(3, seed=1)
    coco = coco_keypoints.to_coco_keypoints(kp, 64, 48, figures.KEYPOINTS, figures.SKELETON)
    ann = coco["annotations"][1]
    assert len(ann["keypoints"]) == 3 * len(figures.KEYPOINTS)
    assert ann["bbox"] == [0.0, 0.0, 48.0, 64.0] and ann["area"] == 48 * 64
    assert ann["category_id"] == 1 and ann["iscrowd"] == 0 and ann["image_id"] == coco["images"][1]["id"]
    assert ann["num_keypoints"] == int((kp[1, :, 2] > 0).sum())
    assert np.allclose(np.reshape(ann["keypoints"], (-1, 3)), kp[1])
    cat = coco["categories"][0]
    assert cat["keypoints"] == list(figures.KEYPOINTS)
    assert cat["skeleton"][0] == [figures.SKELETON[0][0] + 1, figures.SKELETON[0][1] + 1]


def test_round_trip_write_then_load(tmp_path):
    images, kp, root = _write(tmp_path)
    assert (root / "annotations" / "person_keypoints_val.json").is_file()
    crops, loaded, coco = coco_keypoints.load_coco_keypoints_root(root, "val", padding=1.0)
    assert crops.shape == images.shape and crops.dtype == np.uint8 and loaded.dtype == np.float32
    assert np.abs(crops.astype(int) - images.astype(int)).max() == 0  # documented tolerance: exact
    assert np.array_equal(loaded[..., 2], kp[..., 2])
    assert np.abs(loaded[..., :2] - kp[..., :2]).max() < 1.0
    assert [a["source_annotation_id"] for a in coco["annotations"]] == list(range(1, 7))
    # default padding 1.25: the same keypoints, zoomed out by 1.25 about the crop centre
    _, padded, coco = coco_keypoints.load_coco_keypoints(root / "annotations" / "person_keypoints_val.json",
                                                         root / "val")
    shown = padded[..., 2] > 0
    expected = (kp[..., :2] - np.array([24.0, 32.0])) / 1.25 + np.array([24.0, 32.0])
    assert np.array_equal(shown, kp[..., 2] > 0)
    assert np.abs(padded[..., :2][shown] - expected[shown]).max() < 1e-3
    assert coco["annotations"][0]["area"] == pytest.approx(48 * 64 / 1.25**2)


def test_crop_of_a_real_style_annotation(tmp_path):
    """A person box in a larger image: aspect fixing, padding, skipped crowd, keypoints into crop coordinates."""
    from PIL import Image

    (tmp_path / "val").mkdir()
    (tmp_path / "annotations").mkdir()
    img = np.zeros((100, 200, 3), dtype=np.uint8)
    img[40:60, 90:110] = 255
    Image.fromarray(img).save(tmp_path / "val" / "a.png")
    kps = [100, 50, 2, 0, 0, 0, 190, 95, 1]  # centre, unlabelled, corner (outside the crop after cropping)
    data = {"images": [{"id": 5, "file_name": "a.png", "width": 200, "height": 100}],
            "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b", "c"], "skeleton": [[1, 2]]}],
            "annotations": [
                {"id": 9, "image_id": 5, "category_id": 1, "bbox": [80, 30, 40, 40], "keypoints": kps,
                 "num_keypoints": 2, "iscrowd": 0, "area": 1000},
                {"id": 10, "image_id": 5, "category_id": 1, "bbox": [0, 0, 10, 10], "keypoints": [0] * 9,
                 "iscrowd": 1}]}
    (tmp_path / "annotations" / "person_keypoints_val.json").write_text(json.dumps(data))
    crops, kp, coco = coco_keypoints.load_coco_keypoints_root(tmp_path, "val", 64, 48)
    assert crops.shape == (1, 3, 64, 48)
    # box 40x40 -> 40 wide x 53.33 high -> x1.25 = 50 x 66.67 centred at (100, 50): scale 0.96 px/px
    assert kp[0, 0].tolist() == pytest.approx([24.0, 32.0, 2.0])
    assert kp[0, 1].tolist() == [0, 0, 0] and kp[0, 2].tolist() == [0, 0, 0]
    assert crops[0, :, 32, 24].min() == 255 and crops[0, :, 2, 2].max() == 0
    assert coco["annotations"][0]["source_annotation_id"] == 9 and coco["annotations"][0]["num_keypoints"] == 1


def _corrupt(root: Path, edit) -> Path:
    path = root / "annotations" / "person_keypoints_val.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("case", ["length", "visibility", "far_outside", "missing_image"])
def test_bad_input_names_file_and_annotation(tmp_path, case):
    _, _, root = _write(tmp_path, n=3)

    def edit(data):
        ann = data["annotations"][1]  # annotation id 2
        if case == "length":
            ann["keypoints"] = ann["keypoints"][:-3]
        elif case == "visibility":
            ann["keypoints"][2] = 3
        elif case == "far_outside":
            ann["keypoints"][0:3] = [48 * 1.2, 10.0, 2]  # 20% beyond the right border
        else:
            (root / "val" / data["images"][1]["file_name"]).unlink()

    path = _corrupt(root, edit)
    with pytest.raises(DataError) as info:
        coco_keypoints.load_coco_keypoints(path, root / "val")
    message = str(info.value)
    assert "annotation id 2" in message
    assert (str(root / "val" / "000002.png") if case == "missing_image" else str(path)) in message
    if case == "missing_image":
        assert str(path) in message


def test_keypoint_just_outside_the_border_is_accepted(tmp_path):
    _, _, root = _write(tmp_path, n=2)

    def edit(data):
        data["annotations"][0]["keypoints"][0:3] = [48 * 1.05, 10.0, 2]  # 5% beyond: rounding, allowed

    path = _corrupt(root, edit)
    _, kp, _ = coco_keypoints.load_coco_keypoints(path, root / "val", padding=1.0)
    assert kp[0, 0].tolist() == [0, 0, 0]  # outside the crop: not labelled there


def test_missing_annotation_file_names_path_and_layout(tmp_path):
    with pytest.raises(DataError) as info:
        coco_keypoints.load_coco_keypoints_root(tmp_path, "val2017")
    message = str(info.value)
    assert str(tmp_path / "annotations" / "person_keypoints_val2017.json") in message
    assert f"{tmp_path}/val2017/" in message
    with pytest.raises(DataError, match=r"<root>/annotations/person_keypoints_<split>\.json"):
        coco_keypoints.load_coco_keypoints(tmp_path / "nope.json", tmp_path)
