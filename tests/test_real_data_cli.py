"""Every real-format dataset through the shipped CLI: ``kdbench run --dataset NAME --data-root DIR``.

Each test writes a tiny dataset in the format the public download ships (COCO JSON and PNGs,
CIFAR python pickles, an ImageFolder tree, the Cityscapes and Pascal VOC folders), runs one seed
of a smoke protocol on it with the CLI and checks that a record comes out, under the derived
protocol ``<smoke protocol>+<dataset>`` (its own key and hash, never mixed with the generated
data's). The fixtures hold at least one batch of the smoke protocol's training images.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.errors import ConfigError, DataError
from bench.protocol import get_protocol
from bench.results import iter_records, verified_path
from tasks.detection import coco, scenes


def records(results: Path) -> list[dict]:
    return list(iter_records(results)) if results.exists() else []


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(["run", "--quiet", "--seeds", "0", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def check_record(results: Path, protocol: str, dataset: str, method: str = "baseline") -> dict:
    (record,) = records(results)
    base = get_protocol(protocol)
    assert record["protocol"]["name"] == f"{protocol}+{dataset}"
    assert record["protocol"]["key"] == f"{protocol}+{dataset}@v{base.version}"
    assert record["protocol"]["hash"] != base.spec_hash
    named = record["method"]["name"] if isinstance(record["method"], dict) else record["method"]
    assert named == method
    assert all(v is None or np.isfinite(v) for v in record["metrics"].values())
    return record


# ----------------------------------------------------------------------------- COCO


def write_coco(root: Path, n_train: int = 20, n_val: int = 8) -> Path:
    """Generated scenes written as COCO (JSON + PNGs); every other image widened to 64x96, so the
    detector resizes them and the inputs are a list of differently sized images, as in real COCO."""
    for split, count, seed in (("train2017", n_train, 5), ("val2017", n_val, 6)):
        images, annotations = scenes.generate_scenes(count, seed=seed)
        mixed = [np.pad(image, ((0, 0), (0, 0), (0, 32))) if i % 2 else image for i, image in enumerate(images)]
        coco.write_scenes_as_coco(mixed, annotations, scenes.CLASSES, root, split)
    return root


def test_coco_end_to_end_through_the_installed_command(tmp_path):
    """The ``kdbench`` executable, a COCO folder of mixed image sizes, FGFI (teacher, mask in the
    detector's frame): one record. This crashed in Workspace.input_size before (list inputs)."""
    root, results = write_coco(tmp_path / "coco"), tmp_path / "results"
    kdbench = Path(sys.executable).with_name("kdbench")
    command = [str(kdbench)] if kdbench.is_file() else [sys.executable, "-m", "bench.cli"]
    done = subprocess.run([*command, "run", "--protocol", "detection-smoke", "--method", "fgfi", "--dataset", "coco",
                           "--data-root", str(root), "--seeds", "0", "--results", str(results), "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    record = check_record(results, "detection-smoke", "coco", "fgfi")
    assert set(record["metrics"]) >= {"map", "map50"}


def test_coco_test_split_with_other_categories_is_refused_naming_both_files(tmp_path, capsys):
    root = write_coco(tmp_path / "coco")
    val = root / "annotations" / "instances_val2017.json"
    data = json.loads(val.read_text())
    data["categories"][0]["name"] = "not-a-" + data["categories"][0]["name"]
    val.write_text(json.dumps(data))
    code, out = run_cli(["--protocol", "detection-smoke", "--method", "baseline", "--dataset", "coco",
                         "--data-root", str(root), "--results", str(tmp_path / "results")], capsys)
    assert code == DataError.exit_code
    assert "instances_val2017.json" in out and "instances_train2017.json" in out
    assert scenes.CLASSES[0] in out and f"not-a-{scenes.CLASSES[0]}" in out
    assert not records(tmp_path / "results")


def test_same_categories_in_another_id_order_are_refused(tmp_path):
    from tasks.detection.task import load_coco_dataset

    root = write_coco(tmp_path / "coco")
    val = root / "annotations" / "instances_val2017.json"
    data = json.loads(val.read_text())
    first, second = data["categories"][:2]
    first["name"], second["name"] = second["name"], first["name"]
    val.write_text(json.dumps(data))
    with pytest.raises(DataError, match="another order"):
        load_coco_dataset(str(root))


# ----------------------------------------------------------------------------- classification


def write_cifar10(root: Path, per_batch: int = 14) -> Path:
    """``cifar-10-batches-py`` with 5 pickled training batches, a test batch and the meta file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)

    def batch(n: int) -> dict:
        return {b"labels": (np.arange(n) % 10).tolist(), b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}

    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch(per_batch), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(batch(20), protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [f"c{i}".encode() for i in range(10)]}))
    return root


def write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb)).save(path)


def write_image_folder(root: Path, per_class: int = 20) -> Path:
    rng = np.random.default_rng(2)
    for split, count in (("train", per_class), ("test", 3)):
        for k, name in enumerate(("cat", "dog", "eel")):
            for i in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) // (k + 1)
                write_png(root / split / name / f"{i:03d}.png", pixels)
    return root


# ----------------------------------------------------------------------------- segmentation


def label_map(rng, top: int) -> np.ndarray:
    label = rng.integers(0, top + 1, (64, 64)).astype(np.uint8)
    label[:4] = 255  # an unlabelled border, as the real files have
    return label


def write_cityscapes(root: Path, per_split: int = 16) -> Path:
    rng = np.random.default_rng(3)
    for split in ("train", "val"):
        for i in range(per_split):
            stem = f"city/city_{i:06d}_000019"
            write_png(root / "leftImg8bit" / split / f"{stem}_leftImg8bit.png",
                      rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
            path = root / "gtFine" / split / f"{stem}_gtFine_labelTrainIds.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(label_map(rng, 18)).save(path)
    return root


def write_voc(root: Path, per_split: int = 16) -> Path:
    rng = np.random.default_rng(4)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    for split in ("train", "val"):
        ids = [f"2007_{split}{i:03d}" for i in range(per_split)]
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for image_id in ids:
            path = root / "JPEGImages" / f"{image_id}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=95)
            label = Image.frombytes("P", (64, 64), label_map(rng, 20).tobytes())
            label.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
            path = root / "SegmentationClass" / f"{image_id}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            label.save(path)
    return root


@pytest.mark.parametrize("protocol,dataset,writer", [
    ("classification-smoke", "cifar10", write_cifar10),
    ("classification-smoke", "imagefolder", write_image_folder),
    ("segmentation-smoke", "cityscapes", write_cityscapes),
    ("segmentation-smoke", "voc", write_voc),
])
def test_real_datasets_through_the_cli(tmp_path, capsys, protocol, dataset, writer):
    root, results = writer(tmp_path / dataset), tmp_path / "results"
    code, out = run_cli(["--protocol", protocol, "--method", "baseline", "--dataset", dataset,
                         "--data-root", str(root), "--results", str(results)], capsys)
    assert code == 0, out
    check_record(results, protocol, dataset)


# ----------------------------------------------------------------------------- errors before any data is read


@pytest.mark.parametrize("args,expected", [
    (["--dataset", "voc", "--data-root", "."], ["'voc'", "task 'detection'", "valid: coco"]),
    (["--dataset", "coco"], ["--data-root", "instances_", "train2017"]),
    (["--data-root", "."], ["generated dataset 'scenes'", "--dataset NAME", "coco"]),
    (["--dataset", "coco", "--data-root", "/no/such/folder"], ["/no/such/folder", "is not a folder", "annotations"]),
])
def test_dataset_errors_name_the_valid_names_and_the_layout(tmp_path, capsys, args, expected):
    code, out = run_cli(["--protocol", "detection-smoke", "--method", "baseline", "--results", str(tmp_path / "r"),
                         *args], capsys)
    assert code == 2
    for text in expected:
        assert text in out
    assert not records(tmp_path / "r")


# ----------------------------------------------------------------------------- derived protocols by name


def test_get_protocol_resolves_a_derived_name_to_what_the_cli_derives(tmp_path):
    from bench.protocol import protocol_for_data

    derived = protocol_for_data(get_protocol("detection-smoke"), "coco", str(tmp_path))
    assert get_protocol("detection-smoke+coco") == derived
    assert derived.key == f"detection-smoke+coco@v{derived.version}"
    with pytest.raises(ConfigError, match="'voc'.*task 'detection'.*valid: coco"):
        get_protocol("detection-smoke+voc")
    with pytest.raises(ConfigError, match="already reads the real dataset 'coco'"):
        protocol_for_data(derived, "cityscapes", str(tmp_path))


def test_suite_on_coco_with_workers_then_verify_record(tmp_path, capsys):
    """``suite --dataset coco`` hands the derived protocol to 2 worker processes, which resolve it by
    its name; ``verify-record`` of one of its records reruns it (with the record's --data-root) and
    earns it the verified proof, and refuses without the data root; the gate finds its protocol."""
    from bench.regress import protocol_problem

    root, results = write_coco(tmp_path / "coco"), tmp_path / "results"
    code = main(["suite", "--quiet", "--tier", "smoke", "--protocols", "detection-smoke", "--methods", "baseline",
                 "--dataset", "coco", "--data-root", str(root), "--results", str(results), "--jobs", "2"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    found = records(results)
    assert sorted(r["seed"] for r in found) == list(get_protocol("detection-smoke").seeds)
    assert {r["protocol"]["key"] for r in found} == {get_protocol("detection-smoke+coco").key}
    assert "detection-smoke+coco" in out.out  # the leaderboard shows the derived protocol
    assert protocol_problem(found[0]) is None  # the gate resolves it too (was: "not registered any more")
    (record,) = sorted(results.rglob("seed-0.json"))
    assert main(["verify-record", "--quiet", str(record), "--results", str(tmp_path / "rerun")]) == 2
    assert "--data-root" in capsys.readouterr().err
    assert main(["verify-record", "--quiet", str(record), "--data-root", str(root)]) == 0, capsys.readouterr()
    assert verified_path(record).is_file()


def test_suite_dataset_refuses_protocols_of_another_task_listing_them(tmp_path, capsys):
    code = main(["suite", "--quiet", "--tier", "smoke", "--protocols", "detection-smoke", "pose-smoke",
                 "classification-smoke", "--dataset", "coco", "--data-root", str(tmp_path),
                 "--results", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "pose-smoke (pose)" in err and "classification-smoke (classification)" in err
    assert "detection-smoke (" not in err and "task detection" in err
    assert not (tmp_path / "r").exists()
