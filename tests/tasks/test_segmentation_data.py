"""Segmentation data: the generated street scenes, their PNG folders, and Cityscapes/VOC fixtures in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.errors import ConfigError, DataError
from tasks.segmentation import io, scenes

C = {name: i for i, name in enumerate(scenes.CLASSES)}


@pytest.fixture(scope="module")
def scene_set():
    """36 scenes at 64x64 (shared between the generator tests)."""
    return scenes.generate_scenes(36, seed=1)


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For every True pixel, the length of the run of True pixels it is in, along the last axis."""
    out = np.zeros(mask.shape, dtype=np.int64)
    flat, runs = mask.reshape(-1, mask.shape[-1]), out.reshape(-1, mask.shape[-1])
    for r in np.flatnonzero(flat.any(axis=1)):
        edges = np.diff(np.concatenate([[0], flat[r].astype(np.int8), [0]]))
        for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            runs[r, start:stop] = stop - start
    return out


# ----------------------------------------------------------------------------- generator


def test_generator_is_deterministic_and_seed_dependent():
    a_img, a_lab = scenes.generate_scenes(6, seed=3)
    b_img, b_lab = scenes.generate_scenes(6, seed=3)
    c_img, c_lab = scenes.generate_scenes(6, seed=4)
    assert a_img.shape == (6, 3, 64, 64) and a_img.dtype == np.uint8
    assert a_lab.shape == (6, 64, 64) and a_lab.dtype == np.uint8
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img) and not np.array_equal(a_lab, c_lab)
    # image i does not depend on how many images are asked for
    first_img, first_lab = scenes.generate_scenes(2, seed=3)
    assert np.array_equal(first_img, a_img[:2]) and np.array_equal(first_lab, a_lab[:2])


def test_constants_and_label_values(scene_set):
    _, labels = scene_set
    assert len(scenes.CLASSES) >= 6 and len(set(scenes.CLASSES)) == len(scenes.CLASSES)
    assert scenes.CLASSES[0] == "background" and scenes.IGNORE_INDEX == 255 and scenes.GENERATOR_VERSION == 1
    values = set(np.unique(labels).tolist())
    assert values <= set(range(len(scenes.CLASSES))) | {255}


def test_every_class_appears_and_every_scene_has_sky_road_and_ground(scene_set):
    _, labels = scene_set
    present = {c for c in range(len(scenes.CLASSES)) if (labels == c).any()}
    assert present == set(range(len(scenes.CLASSES)))
    for label in labels:
        for name in ("background", "sky", "road", "wall", "roof"):
            assert (label == C[name]).any(), name


def test_ignore_is_a_thin_band_on_boundaries(scene_set):
    _, labels = scene_set
    ignore = labels == scenes.IGNORE_INDEX
    assert 0.005 < ignore.mean() < 0.08
    # every ignored pixel touches (4-neighbourhood) a labelled pixel, and pixels of two different classes
    # lie within its 3x3 neighbourhood: it sits on a boundary between classes
    padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)), mode="edge")
    shifts = [padded[:, 1 + dy : 65 + dy, 1 + dx : 65 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    four = [shifts[1], shifts[3], shifts[5], shifts[7]]
    assert np.logical_or.reduce([s != 255 for s in four])[ignore].all()
    stack = np.stack(shifts).astype(np.int16)
    lo = np.where(stack == 255, 999, stack).min(axis=0)
    hi = np.where(stack == 255, -1, stack).max(axis=0)
    assert ((lo != hi) & (hi >= 0))[ignore].mean() > 0.95
    # the interior of large regions is never ignored
    for cls in ("sky", "road"):
        inside = np.logical_and.reduce([s == C[cls] for s in shifts])
        assert inside.any() and not ignore[inside].any()


def test_thin_structure_class_is_thin_and_trunks_are_not(scene_set):
    _, labels = scene_set
    pole = labels == C["pole"]
    assert pole.any(axis=(1, 2)).mean() > 0.7
    across = np.minimum(_run_lengths(pole), np.swapaxes(_run_lengths(np.swapaxes(pole, 1, 2)), 1, 2))
    assert (across[pole] <= 2).mean() > 0.9
    assert pole.mean() < 0.05
    trunk = labels == C["trunk"]
    assert _run_lengths(trunk)[trunk].mean() > 2.5


def test_spatial_context(scene_set):
    _, labels = scene_set
    rows = np.broadcast_to(np.arange(64)[None, :, None], labels.shape)

    def mean_row(name: str, i: int | None = None) -> float:
        lab, row = (labels, rows) if i is None else (labels[i], rows[i])
        return float(row[lab == C[name]].mean())

    assert mean_row("sky") < mean_row("background") < mean_row("road")
    assert mean_row("roof") < mean_row("wall") and mean_row("foliage") < mean_row("trunk")
    for i in range(len(labels)):
        assert mean_row("sky", i) < mean_row("road", i)
        assert rows[i][labels[i] == C["sky"]].min() == 0, "the sky reaches the top of every image"
    # windows lie inside walls: most of the pixels around a window are wall (or window, or ignore)
    window = labels == C["window"]
    padded = np.pad(labels, ((0, 0), (2, 2), (2, 2)), mode="edge")
    ring = [padded[:, 2 + dy : 66 + dy, 2 + dx : 66 + dx] for dy in (-2, 2) for dx in (-2, 0, 2)]
    around = np.concatenate([r[window] for r in ring])
    assert np.isin(around, [C["wall"], C["window"], 255]).mean() > 0.8


def test_colours_follow_the_labels(scene_set):
    images, labels = scene_set
    sky_vs_road = []
    for image, label in zip(images, labels, strict=True):
        sky = image[:, label == C["sky"]].astype(float).mean(axis=1)
        road = image[:, label == C["road"]].astype(float).mean(axis=1)
        sky_vs_road.append(np.abs(sky - road).sum())
    assert min(sky_vs_road) > 40
    assert len({tuple(image[:, 0, 0] // 16) for image in images}) > 5, "sky colours should vary between images"


def test_generator_sizes_and_bad_arguments():
    images, labels = scenes.generate_scenes(2, seed=0, size=32)
    assert images.shape == (2, 3, 32, 32) and labels.shape == (2, 32, 32)
    images, labels = scenes.generate_scenes(0, seed=0)
    assert images.shape == (0, 3, 64, 64) and labels.shape == (0, 64, 64)
    for kwargs in ({"size": 16}, {"seed": -1}, {"n_images": -2}):
        with pytest.raises(ConfigError):
            scenes.generate_scenes(**{"n_images": 2, "seed": 0, **kwargs})


# ----------------------------------------------------------------------------- generated folders


def test_write_scenes_read_folder_round_trip(tmp_path):
    images, labels = scenes.generate_scenes(5, seed=7)
    root = io.write_scenes(images, labels, tmp_path / "seg", "val")
    assert root == tmp_path / "seg"
    assert sorted(p.name for p in (root / "labels" / "val").iterdir()) == [f"{i:06d}.png" for i in range(5)]
    with Image.open(root / "labels" / "val" / "000000.png") as img:
        assert img.mode == "L"
    loaded_images, loaded_labels = io.read_folder(root, "val")
    assert len(loaded_images) == len(loaded_labels) == 5
    for i in range(5):
        assert loaded_images[i].dtype == np.uint8 and loaded_labels[i].dtype == np.uint8
        assert np.array_equal(loaded_images[i], images[i]) and np.array_equal(loaded_labels[i], labels[i])


# ----------------------------------------------------------------------------- real-format fixtures

H, W = 6, 8


def _voc_palette() -> list[int]:
    """The Pascal VOC colour map (index -> RGB), flattened."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def _write_label(path: Path, label: np.ndarray, palette: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if palette:
        img = Image.frombytes("P", (label.shape[1], label.shape[0]), np.ascontiguousarray(label).tobytes())
        img.putpalette(_voc_palette())
    else:
        img = Image.fromarray(np.ascontiguousarray(label))
    img.save(path)


def _write_image(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(path)


def _label(top: int, seed: int) -> np.ndarray:
    """A label map holding 0, 1, ``top`` (the dataset's largest id) and 255."""
    label = np.random.default_rng(seed).integers(0, top + 1, (H, W)).astype(np.uint8)
    label[0, :3] = (0, 1, top)
    label[-1, :] = 255
    return label


def _image(seed: int) -> np.ndarray:
    """A smooth colour image (survives JPEG within a few levels)."""
    colour = np.random.default_rng(seed).integers(40, 216, 3)
    ramp = np.arange(W)[None, None, :] * 2 + np.arange(H)[None, :, None]
    return (colour[:, None, None] + ramp).astype(np.uint8)


def _folder(root: Path) -> dict:
    images = np.stack([_image(0), _image(1)])
    labels = np.stack([_label(len(scenes.CLASSES) - 1, 0), _label(len(scenes.CLASSES) - 1, 1)])
    io.write_scenes(images, labels, root, "train")
    return {"load": lambda: io.read_folder(root, "train"), "top": len(scenes.CLASSES) - 1, "palette": False,
            "image": root / "images" / "train" / "000000.png", "label": root / "labels" / "train" / "000000.png",
            "image_dir": root / "images" / "train", "images": images, "labels": labels, "names": None}


def _cityscapes(root: Path) -> dict:
    names = ["aachen/aachen_000000_000019_leftImg8bit.png", "bonn/bonn_000001_000019_leftImg8bit.png"]
    images, labels = np.stack([_image(2), _image(3)]), np.stack([_label(18, 2), _label(18, 3)])
    for name, image, label in zip(names, images, labels, strict=True):
        _write_image(root / "leftImg8bit" / "val" / name, image)
        stem = name[: -len("_leftImg8bit.png")]
        _write_label(root / "gtFine" / "val" / f"{stem}_gtFine_labelTrainIds.png", label, palette=False)
        # the other gtFine files the download ships are not read
        _write_label(root / "gtFine" / "val" / f"{stem}_gtFine_labelIds.png", label + 7, palette=False)
    return {"load": lambda: io.load_cityscapes(root, "val"), "top": 18, "palette": False,
            "image": root / "leftImg8bit" / "val" / names[0],
            "label": root / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelTrainIds.png",
            "image_dir": root / "leftImg8bit" / "val", "images": images, "labels": labels, "names": names}


def _voc(root: Path) -> dict:
    ids = ["2008_000002", "2007_000032"]  # list order, not sorted order
    images, labels = np.stack([_image(4), _image(5)]), np.stack([_label(20, 4), _label(20, 5)])
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n\n")
    for image_id, image, label in zip(ids, images, labels, strict=True):
        path = root / "JPEGImages" / f"{image_id}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(path, quality=95)
        _write_label(root / "SegmentationClass" / f"{image_id}.png", label, palette=True)
    return {"load": lambda: io.load_voc(root, "val"), "top": 20, "palette": True,
            "image": root / "JPEGImages" / f"{ids[0]}.jpg", "label": root / "SegmentationClass" / f"{ids[0]}.png",
            "image_dir": root / "JPEGImages", "images": images, "labels": labels, "names": [f"{i}.jpg" for i in ids]}


DATASETS = {"folder": _folder, "cityscapes": _cityscapes, "voc": _voc}


@pytest.fixture(params=sorted(DATASETS))
def dataset(request, tmp_path):
    return DATASETS[request.param](tmp_path / request.param)


def test_loaders_read_images_ids_and_names(dataset):
    out = dataset["load"]()
    images, labels = out[0], out[1]
    assert len(images) == len(labels) == 2
    for image, label, want_image, want_label in zip(images, labels, dataset["images"], dataset["labels"],
                                                    strict=True):
        assert image.shape == (3, H, W) and image.dtype == np.uint8
        assert label.shape == (H, W) and label.dtype == np.uint8
        assert np.array_equal(label, want_label)
        assert {0, 1, dataset["top"], 255} <= set(np.unique(label).tolist())
        assert np.abs(image.astype(int) - want_image).max() <= (12 if dataset["palette"] else 0)
    if dataset["names"] is not None:
        assert out[2] == dataset["names"]


def test_voc_labels_are_palette_indices_not_colours(tmp_path):
    data = _voc(tmp_path)
    with Image.open(data["label"]) as img:
        assert img.mode == "P"
        grey = np.asarray(img.convert("L"))
    _, labels, _ = io.load_voc(tmp_path, "val")
    assert not np.array_equal(grey, labels[0]) and np.array_equal(labels[0], data["labels"][0])


def test_label_of_another_size_names_both_files_and_sizes(dataset):
    _write_label(dataset["label"], _label(dataset["top"], 9)[:, : W - 3], dataset["palette"])
    with pytest.raises(DataError) as err:
        dataset["load"]()
    message = str(err.value)
    assert str(dataset["label"]) in message and str(dataset["image"]) in message
    assert f"{W - 3}x{H}" in message and f"{W}x{H}" in message


def test_class_id_out_of_range_names_the_file_and_the_ids(dataset):
    label = _label(dataset["top"], 9)
    label[1, 1], label[2, 2] = dataset["top"] + 1, 200
    _write_label(dataset["label"], label, dataset["palette"])
    with pytest.raises(DataError) as err:
        dataset["load"]()
    message = str(err.value)
    assert str(dataset["label"]) in message and f"{dataset['top'] + 1}, 200" in message
    assert "255" in message.split("outside")[1]  # names the ignore id as allowed, not as offending


def test_missing_label_map_names_it_and_the_layout(dataset):
    dataset["label"].unlink()
    with pytest.raises(DataError, match="expected layout") as err:
        dataset["load"]()
    assert str(dataset["label"]) in str(err.value)


def test_missing_image_folder_names_it_and_the_layout(dataset):
    shutil.rmtree(dataset["image_dir"])
    with pytest.raises(DataError, match="expected layout") as err:
        dataset["load"]()
    assert str(dataset["image_dir"]) in str(err.value)


def test_colour_label_map_is_rejected(dataset):
    rgb = np.repeat(_label(dataset["top"], 9)[:, :, None], 3, axis=2)
    Image.fromarray(rgb).save(dataset["label"])
    with pytest.raises(DataError, match="mode 'RGB'") as err:
        dataset["load"]()
    assert str(dataset["label"]) in str(err.value)


def test_voc_missing_split_list_and_missing_listed_image(tmp_path):
    data = _voc(tmp_path)
    data["image"].unlink()
    with pytest.raises(DataError, match="expected layout") as err:
        io.load_voc(tmp_path, "val")
    assert str(data["image"]) in str(err.value) and "val.txt" in str(err.value)
    with pytest.raises(DataError, match="expected layout") as err:
        io.load_voc(tmp_path, "train")
    assert str(tmp_path / "ImageSets" / "Segmentation" / "train.txt") in str(err.value)


def test_empty_or_orphaned_folders_are_errors(tmp_path):
    (tmp_path / "cs" / "leftImg8bit" / "val" / "aachen").mkdir(parents=True)
    (tmp_path / "cs" / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no"):
        io.load_cityscapes(tmp_path / "cs", "val")
    data = _folder(tmp_path / "seg")
    data["image"].unlink()
    with pytest.raises(DataError) as err:
        io.read_folder(tmp_path / "seg", "train")
    assert str(data["label"]) in str(err.value) and "has no image" in str(err.value)
