"""Detection data: the generated scenes and the COCO reader/writer (fixtures written in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.errors import ConfigError, DataError
from tasks.detection import coco, scenes


@pytest.fixture(scope="module")
def scene_set():
    """48 scenes at 64x64 with their visible masks (shared: generating is the slow part)."""
    return scenes.generate_scenes_with_masks(48, seed=5)


# ----------------------------------------------------------------------------- generator


def test_generator_is_deterministic_and_seed_dependent():
    a_img, a_ann = scenes.generate_scenes(6, seed=3)
    b_img, b_ann = scenes.generate_scenes(6, seed=3)
    c_img, c_ann = scenes.generate_scenes(6, seed=4)
    assert a_img.shape == (6, 3, 64, 64) and a_img.dtype == np.uint8
    assert np.array_equal(a_img, b_img)
    for a, b in zip(a_ann, b_ann, strict=True):
        assert np.array_equal(a["boxes"], b["boxes"]) and np.array_equal(a["labels"], b["labels"])
    assert not np.array_equal(a_img, c_img)
    assert any(len(a["labels"]) != len(c["labels"]) or not np.array_equal(a["boxes"], c["boxes"])
               for a, c in zip(a_ann, c_ann, strict=True))


def test_generate_scenes_matches_the_masked_variant(scene_set):
    images, annotations = scenes.generate_scenes(48, seed=5)
    assert np.array_equal(images, scene_set[0])
    for a, b in zip(annotations, scene_set[1], strict=True):
        assert np.array_equal(a["boxes"], b["boxes"]) and np.array_equal(a["labels"], b["labels"])


def test_classes_and_objects_per_image(scene_set):
    _, annotations, _ = scene_set
    assert len(scenes.CLASSES) >= 5 and len(set(scenes.CLASSES)) == len(scenes.CLASSES)
    labels = np.concatenate([a["labels"] for a in annotations])
    assert labels.dtype == np.int64 and labels.min() >= 1 and labels.max() <= len(scenes.CLASSES)
    assert len(np.unique(labels)) >= 5
    counts = np.array([len(a["labels"]) for a in annotations])
    assert counts.max() <= 5 and counts.mean() >= 2.5
    assert (counts >= 2).mean() > 0.8


def test_boxes_are_in_bounds_and_include_small_objects(scene_set):
    _, annotations, _ = scene_set
    boxes = np.concatenate([a["boxes"] for a in annotations])
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (w > 0).all() and (h > 0).all()
    assert (np.maximum(w, h) < 10).any(), "no small objects"
    assert (np.maximum(w, h) >= 20).any(), "no large objects"


def test_boxes_are_tight_around_visible_masks(scene_set):
    _, annotations, masks = scene_set
    overlapping = 0
    for ann, mask in zip(annotations, masks, strict=True):
        assert mask.shape == (len(ann["labels"]), 64, 64)
        assert np.array_equal(ann["boxes"], scenes.boxes_of_masks(mask))
        for (x1, y1, x2, y2), m in zip(ann["boxes"].astype(int), mask, strict=True):
            ys, xs = np.nonzero(m)
            assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (y1, y2, x1, x2)
        assert (mask.sum(axis=0) <= 1).all(), "visible masks must not overlap"
        boxes = ann["boxes"]
        ix = np.minimum(boxes[:, None, 2], boxes[None, :, 2]) - np.maximum(boxes[:, None, 0], boxes[None, :, 0])
        iy = np.minimum(boxes[:, None, 3], boxes[None, :, 3]) - np.maximum(boxes[:, None, 1], boxes[None, :, 1])
        overlapping += int(((ix > 0) & (iy > 0)).sum() - len(boxes)) // 2
    assert overlapping > 0, "no occlusion in 48 scenes"


def test_noise_free_objects_are_flat_colour_on_their_masks():
    images, annotations, masks = scenes.generate_scenes_with_masks(8, seed=2, clutter=0, noise_std=0.0)
    for image, mask in zip(images, masks, strict=True):
        for m in mask:
            pixels = image[:, m]
            assert (pixels == pixels[:, :1]).all()


def test_shape_mask_and_box_on_a_hand_made_disc():
    mask = scenes.shape_mask(scenes.CLASSES.index("disc"), cx=20.0, cy=30.0, half=5.0, size=64)
    assert np.array_equal(scenes.boxes_of_masks(mask[None])[0], [15, 25, 25, 35])
    single = np.zeros((1, 8, 8), dtype=bool)
    single[0, 3, 5] = True
    assert scenes.boxes_of_masks(single).tolist() == [[5, 3, 6, 4]]
    # A disc cut by the left border: its box is clipped to the image.
    cut = scenes.shape_mask(0, cx=2.0, cy=30.0, half=5.0, size=64)
    assert np.array_equal(scenes.boxes_of_masks(cut[None])[0], [0, 25, 7, 35])


def test_generator_rejects_bad_arguments():
    with pytest.raises(ConfigError):
        scenes.generate_scenes(4, seed=0, min_objects=3, max_objects=2)
    with pytest.raises(ConfigError):
        scenes.generate_scenes(4, seed=0, size=8)
    images, annotations = scenes.generate_scenes(0, seed=0)
    assert images.shape == (0, 3, 64, 64) and annotations == []


# ----------------------------------------------------------------------------- COCO round trip


def test_scenes_round_trip_through_the_coco_loader(tmp_path):
    images, annotations = scenes.generate_scenes(10, seed=9)
    root = coco.write_scenes_as_coco(images, annotations, scenes.CLASSES, tmp_path / "scenes", "val")
    assert (root / "annotations" / "instances_val.json").is_file()
    loaded, targets, classes, ground_truth = coco.load_coco_root(root, "val")
    assert classes == scenes.CLASSES
    assert len(loaded) == len(targets) == 10
    for i, (image, target, ann) in enumerate(zip(loaded, targets, annotations, strict=True)):
        assert image.dtype == np.uint8 and np.array_equal(image, images[i])
        assert target["image_id"] == i + 1
        assert target["boxes"].dtype == np.float32 and target["labels"].dtype == np.int64
        assert np.abs(target["boxes"] - ann["boxes"]).max(initial=0.0) <= 0.5
        assert np.array_equal(target["labels"], ann["labels"])
    assert [c["id"] for c in ground_truth["categories"]] == list(range(1, len(scenes.CLASSES) + 1))
    assert len(ground_truth["annotations"]) == sum(len(a["labels"]) for a in annotations)


def test_to_coco_ids_and_boxes():
    anns = [{"boxes": np.array([[1, 2, 5, 10]], np.float32), "labels": np.array([2])},
            {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)},
            {"boxes": np.array([[0, 0, 3, 3], [4, 4, 8, 6]], np.float32), "labels": np.array([1, 3])}]
    gt = coco.to_coco(anns, ("a", "b", "c"), [(16, 20)] * 3)
    assert [im["id"] for im in gt["images"]] == [1, 2, 3]
    assert gt["images"][0] == {"id": 1, "width": 20, "height": 16, "file_name": "000001.png"}
    assert [a["id"] for a in gt["annotations"]] == [1, 2, 3]
    first = gt["annotations"][0]
    assert first["image_id"] == 1 and first["category_id"] == 2 and first["iscrowd"] == 0
    assert first["bbox"] == [1.0, 2.0, 4.0, 8.0] and first["area"] == 32.0
    assert [a["image_id"] for a in gt["annotations"]] == [1, 3, 3]
    assert gt["categories"] == [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate("abc")]


def test_perfect_detections_score_full_map_with_pycocotools(tmp_path, capsys):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations = scenes.generate_scenes(6, seed=1)
    root = coco.write_scenes_as_coco(images, annotations, scenes.CLASSES, tmp_path, "test")
    _, targets, _, ground_truth = coco.load_coco_root(root, "test")
    gt = COCO()
    gt.dataset = ground_truth
    gt.createIndex()
    detections = [{"image_id": t["image_id"], "category_id": int(label), "score": 1.0,
                   "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}
                  for t in targets for (x1, y1, x2, y2), label in zip(t["boxes"], t["labels"], strict=True)]
    evaluator = COCOeval(gt, gt.loadRes(detections), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- real-COCO fixtures


def _write_coco(root: Path, split: str, images: list[dict], annotations: list[dict], categories: list[dict],
                write_images: bool = True) -> Path:
    """A COCO folder with small solid-colour PNGs; returns the annotation file."""
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    if write_images:
        for entry in images:
            pixels = np.full((entry["height"], entry["width"], 3), entry["id"] * 10, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / entry["file_name"])
    path = root / "annotations" / f"instances_{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


IMAGES = [{"id": 4, "file_name": "a.png", "width": 20, "height": 10},
          {"id": 8, "file_name": "b.png", "width": 12, "height": 16}]
CATEGORIES = [{"id": 9, "name": "zebra"}, {"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]


def _ann(id_: int, image_id: int = 4, category_id: int = 3, bbox=(1, 2, 5, 4), **extra) -> dict:
    return {"id": id_, "image_id": image_id, "category_id": category_id, "bbox": list(bbox),
            "iscrowd": 0, **extra}


def test_categories_are_remapped_to_contiguous_ids(tmp_path):
    anns = [_ann(1, category_id=9), _ann(2, category_id=3), _ann(3, category_id=7, bbox=(0, 0, 20, 10)),
            _ann(4, category_id=7, iscrowd=1)]
    _write_coco(tmp_path, "val", IMAGES, anns, CATEGORIES)
    images, targets, classes, gt = coco.load_coco_root(tmp_path, "val")
    assert classes == ("cat", "dog", "zebra")
    assert [t["image_id"] for t in targets] == [4, 8]
    assert images[0].shape == (3, 10, 20) and images[1].shape == (3, 16, 12)
    assert (images[0] == 40).all() and (images[1] == 80).all()
    assert targets[0]["labels"].tolist() == [3, 1, 2]  # the crowd annotation is not a target
    assert targets[0]["boxes"].tolist() == [[1, 2, 6, 6], [1, 2, 6, 6], [0, 0, 20, 10]]
    assert [(c["id"], c["name"]) for c in gt["categories"]] == [(1, "cat"), (2, "dog"), (3, "zebra")]
    assert [(a["id"], a["category_id"], a["iscrowd"]) for a in gt["annotations"]] == [
        (1, 3, 0), (2, 1, 0), (3, 2, 0), (4, 2, 1)]


def test_image_without_objects_has_empty_targets(tmp_path):
    _write_coco(tmp_path, "val", IMAGES, [_ann(1)], CATEGORIES)
    _, targets, _, _ = coco.load_coco_root(tmp_path, "val")
    empty = targets[1]
    assert empty["image_id"] == 8
    assert empty["boxes"].shape == (0, 4) and empty["boxes"].dtype == np.float32
    assert empty["labels"].shape == (0,) and empty["labels"].dtype == np.int64


def test_boxes_within_one_pixel_of_the_border_are_clipped(tmp_path):
    _write_coco(tmp_path, "val", IMAGES, [_ann(5, bbox=(-0.5, 1, 20.8, 9.6))], CATEGORIES)
    _, targets, _, _ = coco.load_coco_root(tmp_path, "val")
    assert targets[0]["boxes"].tolist() == [[0, 1, 20, 10]]


@pytest.mark.parametrize(("bad", "why"), [
    (_ann(17, bbox=(15, 2, 7, 4)), "outside its image"),       # x + w beyond the width
    (_ann(17, bbox=(2, 8, 4, 5)), "outside its image"),        # y + h beyond the height
    (_ann(17, bbox=(-3, 2, 5, 4)), "outside its image"),       # x < 0
    (_ann(17, bbox=(1, -2, 5, 4)), "outside its image"),       # y < 0
    (_ann(17, bbox=(-0.9, 2, 0.5, 4)), "outside its image"),   # within tolerance, yet wholly outside
    (_ann(17, bbox=(1, 2, 0, 4)), "non-positive"),             # w <= 0
    (_ann(17, bbox=(1, 2, 4, -1)), "non-positive"),            # h <= 0
    (_ann(17, bbox=(1, 2, 4)), "4 finite numbers"),            # not 4 numbers
    (_ann(17, category_id=5), "not in 'categories'"),          # unknown category
    (_ann(17, image_id=99), "no entry in 'images'"),           # no such image
], ids=["right", "bottom", "left", "top", "outside-in-tolerance", "zero-width", "negative-height", "short-bbox",
        "category", "image"])
def test_bad_annotations_name_the_file_and_annotation_id(tmp_path, bad, why):
    path = _write_coco(tmp_path, "val", IMAGES, [_ann(16), bad], CATEGORIES)
    with pytest.raises(DataError) as info:
        coco.load_coco(path, tmp_path / "val")
    message = str(info.value)
    assert str(path) in message and "annotation id 17" in message and why in message


def test_duplicate_annotation_ids_are_rejected(tmp_path):
    path = _write_coco(tmp_path, "val", IMAGES, [_ann(16), _ann(16, image_id=8)], CATEGORIES)
    with pytest.raises(DataError, match="annotation id 16 appears twice"):
        coco.load_coco(path, tmp_path / "val")


def test_missing_image_file_names_the_expected_path(tmp_path):
    path = _write_coco(tmp_path, "val", IMAGES, [], CATEGORIES, write_images=False)
    with pytest.raises(DataError, match="does not exist") as info:
        coco.load_coco(path, tmp_path / "val")
    assert str(tmp_path / "val" / "a.png") in str(info.value)


def test_unreadable_json_names_the_file(tmp_path):
    path = _write_coco(tmp_path, "val", IMAGES, [], CATEGORIES)
    path.write_text('{"images": [')
    with pytest.raises(DataError, match="cannot read COCO annotation file") as info:
        coco.load_coco_root(tmp_path, "val")
    assert str(path) in str(info.value)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="not an object"):
        coco.load_coco_root(tmp_path, "val")


def test_missing_annotation_file_or_image_folder_explain_the_layout(tmp_path):
    with pytest.raises(DataError) as info:
        coco.load_coco_root(tmp_path, "train2017")
    message = str(info.value)
    assert str(tmp_path / "annotations" / "instances_train2017.json") in message
    assert f"{tmp_path}/train2017/" in message
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train2017.json").write_text("{}")
    with pytest.raises(DataError) as info:
        coco.load_coco_root(tmp_path, "train2017")
    assert str(tmp_path / "train2017") in str(info.value) and "instances_train2017.json" in str(info.value)
    with pytest.raises(DataError, match="<root>/annotations/instances_<split>.json"):
        coco.load_coco(tmp_path / "nope.json", tmp_path)
    with pytest.raises(DataError, match="<root>/<split>/"):
        coco.load_coco(tmp_path / "annotations" / "instances_train2017.json", tmp_path / "nope")


def test_image_size_must_match_its_entry(tmp_path):
    path = _write_coco(tmp_path, "val", IMAGES, [], CATEGORIES)
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "val" / "b.png")
    with pytest.raises(DataError, match="b.png is 5x5") as info:
        coco.load_coco(path, tmp_path / "val")
    assert str(path) in str(info.value)
