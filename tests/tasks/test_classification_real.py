"""Real-format dataset adapters: tiny CIFAR pickles and ImageFolder trees in tmp_path."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from real_formats import (C10_NAMES, C100_NAMES, dump_pickle, make_cifar10, make_image_folder, read_all, read_ids,
                          write_cifar100, write_png)

from bench.errors import ConfigError, DataError
from tasks.classification.real import load_cifar, load_image_folder

# ----------------------------------------------------------------------------- CIFAR-10


def test_cifar10_shapes_dtypes_classes_and_pixels(tmp_path: Path) -> None:
    folder, train_labels, test_rows = make_cifar10(tmp_path)
    splits = load_cifar(tmp_path, num_classes=10, val_fraction=0.1)
    assert set(splits) == {"train", "val", "test"}
    for s in splits.values():
        assert s.inputs.dtype == torch.uint8 and s.targets.dtype == torch.int64
        assert s.inputs.shape[1:] == (3, 32, 32) and len(s.inputs) == len(s.targets)
        assert s.classes == tuple(C10_NAMES)
    assert len(splits["train"]) + len(splits["val"]) == 100
    test = splits["test"]
    assert len(test) == 7 and test.targets.tolist() == [0, 1, 2, 9, 4, 5, 6]
    assert test.inputs[3, 2, 5, 7].item() == 201 and test.inputs[3, 0, 5, 7].item() == 13
    assert torch.equal(test.inputs[6, 1], torch.from_numpy(test_rows[6, 1024:2048].reshape(32, 32)))
    # train pixels round-trip too: every image's tag matches its label in file order
    got = dict(zip(read_ids(splits["train"].inputs), splits["train"].targets.tolist(), strict=True))
    got.update(zip(read_ids(splits["val"].inputs), splits["val"].targets.tolist(), strict=True))
    assert got == dict(enumerate(train_labels.tolist()))


@pytest.mark.parametrize(("fraction", "n_val"), [(0.2, 2), (0.15, 2), (0.12, 1), (0.99, 9)])
def test_cifar10_val_is_last_fraction_of_each_class(tmp_path: Path, fraction: float, n_val: int) -> None:
    """Per class of 10: the last round(10 * fraction) in file order (half up, never the whole class)."""
    _, train_labels, _ = make_cifar10(tmp_path, per_class_per_batch=2)  # 10 per class
    splits = load_cifar(tmp_path / "cifar-10-batches-py", val_fraction=fraction)  # root = the folder itself
    train_ids, val_ids = read_ids(splits["train"].inputs), read_ids(splits["val"].inputs)
    assert not set(train_ids) & set(val_ids)
    assert sorted(train_ids + val_ids) == list(range(100))
    assert train_ids == sorted(train_ids) and val_ids == sorted(val_ids)  # file order kept
    expected_val = sorted(i for c in range(10) for i in np.flatnonzero(train_labels == c)[-n_val:].tolist())
    assert val_ids == expected_val
    assert torch.bincount(splits["val"].targets, minlength=10).tolist() == [n_val] * 10
    assert torch.bincount(splits["train"].targets, minlength=10).tolist() == [10 - n_val] * 10


def test_cifar10_split_is_deterministic(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    a, b = load_cifar(tmp_path), load_cifar(tmp_path)
    for name in ("train", "val", "test"):
        assert torch.equal(a[name].inputs, b[name].inputs) and torch.equal(a[name].targets, b[name].targets)


def test_cifar_missing_root_names_path_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_cifar(tmp_path / "nowhere")
    msg = str(exc.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg
    assert "data_batch_1..5, test_batch, batches.meta" in msg


def test_cifar_missing_file_names_it(tmp_path: Path) -> None:
    folder, _, _ = make_cifar10(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError) as exc:
        load_cifar(tmp_path)
    assert str(folder / "data_batch_3") in str(exc.value)
    assert "data_batch_1..5, test_batch, batches.meta" in str(exc.value)


@pytest.mark.parametrize("content", [b"this is not a pickle", None], ids=["garbage", "truncated"])
def test_cifar_corrupt_pickle_names_file(tmp_path: Path, content: bytes | None) -> None:
    folder, _, _ = make_cifar10(tmp_path)
    path = folder / "data_batch_2"
    path.write_bytes(content if content is not None else path.read_bytes()[:100])
    with pytest.raises(DataError, match="data_batch_2") as exc:
        load_cifar(tmp_path)
    assert str(path) in str(exc.value)


def test_cifar_wrong_row_size_names_file(tmp_path: Path) -> None:
    folder, _, _ = make_cifar10(tmp_path)
    dump_pickle(folder / "test_batch", {b"labels": [0, 1], b"data": np.zeros((2, 1000), np.uint8)})
    with pytest.raises(DataError, match="test_batch"):
        load_cifar(tmp_path)


def test_cifar_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        load_cifar("/unused", num_classes=20)
    with pytest.raises(ConfigError, match="val_fraction"):
        load_cifar("/unused", val_fraction=1.0)
    with pytest.raises(ConfigError, match="val_fraction"):
        load_cifar("/unused", val_fraction=-0.1)


# ----------------------------------------------------------------------------- CIFAR-100


def test_cifar100(tmp_path: Path) -> None:
    _, test_rows = write_cifar100(tmp_path, train_per_class=3, test_labels=[99, 0, 5, 42])
    splits = load_cifar(tmp_path, num_classes=100, val_fraction=0.34)
    assert splits["train"].classes == tuple(C100_NAMES)
    assert splits["test"].targets.tolist() == [99, 0, 5, 42]
    assert torch.equal(splits["test"].inputs[1, 1], torch.from_numpy(test_rows[1, 1024:2048].reshape(32, 32)))
    assert read_ids(splits["val"].inputs) == [3 * c + 2 for c in range(100)]  # round(3 * 0.34) = 1, the last
    assert len(splits["train"]) == 200 and splits["train"].inputs.shape == (200, 3, 32, 32)

    with pytest.raises(DataError) as exc:
        load_cifar(tmp_path, num_classes=10)
    assert "cifar-10-batches-py" in str(exc.value)


def test_cifar100_val_fraction_0_trains_on_all_of_train_and_leaves_val_empty(tmp_path: Path) -> None:
    """The published recipes train on all 50000 images (RepDistiller's CIFAR100 train=True set)."""
    write_cifar100(tmp_path, train_per_class=2, test_per_class=1)
    splits = load_cifar(tmp_path, num_classes=100, val_fraction=0.0)
    assert read_ids(splits["train"].inputs) == list(range(200))
    assert len(splits["val"]) == 0 and splits["val"].inputs.shape == (0, 3, 32, 32)
    assert splits["val"].classes == tuple(C100_NAMES) and len(splits["test"]) == 100


# ----------------------------------------------------------------------------- ImageFolder


def test_image_folder_shapes_classes_pixels(tmp_path: Path) -> None:
    make_image_folder(tmp_path)
    splits = load_image_folder(tmp_path, size=32)
    for s in splits.values():
        assert s.classes == ("cat", "dog", "eel")
        assert read_all(s).dtype == torch.uint8 and s.targets.dtype == torch.int64
        assert read_all(s).shape[1:] == (3, 32, 32)
    test, inputs = splits["test"], read_all(splits["test"])
    assert test.targets.tolist() == [0, 1]  # cat then dog (sorted classes)
    assert inputs[1, :, 5, 7].tolist() == [10, 20, 30]  # the dot at x=7, y=5
    assert inputs[1, :, 0, 0].tolist() == [1, 2, 3]
    assert inputs[0].unique().tolist() == [128]  # grayscale -> RGB, upsampled bilinear (constant)


def test_image_folder_resize(tmp_path: Path) -> None:
    make_image_folder(tmp_path)
    splits = load_image_folder(tmp_path, size=8)
    assert read_all(splits["train"]).shape[1:] == (3, 8, 8)
    cat = read_all(splits["train"])[splits["train"].targets == 0]
    assert (cat[:, 0] == 200).all() and (cat[:, 1] == 10).all()


def test_image_folder_resize_is_bilinear(tmp_path: Path) -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    img[:, 2:] = 200  # left half 0, right half 200: nearest would keep 0/200, bilinear blends
    (tmp_path / "train" / "a").mkdir(parents=True)
    Image.fromarray(img).save(tmp_path / "train" / "a" / "x.png")
    (tmp_path / "test" / "a").mkdir(parents=True)
    Image.fromarray(img).save(tmp_path / "test" / "a" / "x.png")
    out = load_image_folder(tmp_path, size=2)["test"].read(0)
    assert ((out > 0) & (out < 200)).all() and (out[:, :, 0] < out[:, :, 1]).all()


def test_image_folder_carves_stratified_val(tmp_path: Path) -> None:
    make_image_folder(tmp_path)
    splits = load_image_folder(tmp_path, val_fraction=0.2)  # 5 per class -> 1 per class in val
    assert splits["val"].targets.tolist() == [0, 1, 2]
    assert splits["train"].targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_image_folder_val_is_last_file_of_each_class(tmp_path: Path) -> None:
    for i in range(4):  # one class, 4 images told apart by their red value
        write_png(tmp_path / "train" / "a" / f"{i}.png", (10 * i, 0, 0))
    write_png(tmp_path / "test" / "a" / "t.png", (0, 0, 0))
    splits = load_image_folder(tmp_path, size=4, val_fraction=0.5)
    assert read_all(splits["train"])[:, 0, 0, 0].tolist() == [0, 10]
    assert read_all(splits["val"])[:, 0, 0, 0].tolist() == [20, 30]


def test_image_folder_uses_val_folder(tmp_path: Path) -> None:
    make_image_folder(tmp_path, with_val=True)
    splits = load_image_folder(tmp_path)
    assert len(splits["train"]) == 15
    assert splits["val"].targets.tolist() == [2] and splits["val"].read(0)[:, 0, 0].tolist() == [5, 5, 5]


def test_image_folder_unknown_test_class_named(tmp_path: Path) -> None:
    make_image_folder(tmp_path)
    write_png(tmp_path / "test" / "fox" / "f.png", (0, 0, 0))
    with pytest.raises(DataError) as exc:
        load_image_folder(tmp_path)
    assert str(tmp_path / "test" / "fox") in str(exc.value)


def test_image_folder_missing_test_names_path_and_layout(tmp_path: Path) -> None:
    make_image_folder(tmp_path)
    for p in (tmp_path / "test").rglob("*"):
        if p.is_file():
            p.unlink()
    for p in sorted((tmp_path / "test").rglob("*"), reverse=True):
        p.rmdir()
    (tmp_path / "test").rmdir()
    with pytest.raises(DataError) as exc:
        load_image_folder(tmp_path)
    msg = str(exc.value)
    assert str(tmp_path / "test") in msg and "<class>/<images>" in msg


def test_image_folder_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as exc:
        load_image_folder(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(exc.value) and "train/<class>/<images>" in str(exc.value)


def test_image_folder_without_images_names_folder(tmp_path: Path) -> None:
    make_image_folder(tmp_path)
    (tmp_path / "train" / "zebra").mkdir()
    with pytest.raises(DataError) as exc:
        load_image_folder(tmp_path)
    assert str(tmp_path / "train" / "zebra") in str(exc.value)

    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    (empty / "train" / "a" / "readme.txt").write_text("no images")
    (empty / "test").mkdir()
    with pytest.raises(DataError) as exc:
        load_image_folder(empty)
    assert str(empty / "train" / "a") in str(exc.value)


def test_image_folder_empty_test_names_folder(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        write_png(tmp_path / "train" / cls / "x.png", (0, 0, 0))
    (tmp_path / "test" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images") as exc:
        load_image_folder(tmp_path)
    assert str(tmp_path / "test") in str(exc.value)


def test_image_folder_corrupt_image_names_file(tmp_path: Path) -> None:
    make_image_folder(tmp_path)
    bad = tmp_path / "train" / "dog" / "03.png"
    bad.write_bytes(b"\x89PNG not really")
    train = load_image_folder(tmp_path, val_fraction=0.0)["train"]  # streamed: scanning opens no image
    with pytest.raises(DataError) as exc:
        train.read(train.files.index(str(bad)))
    assert str(bad) in str(exc.value)


# ----------------------------------------------------------------------------- CIFAR: restricted unpickling


def _py2_str(data: bytes) -> bytes:
    """A Python 2 ``str`` as cPickle protocol 2 writes it (SHORT_BINSTRING / BINSTRING)."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + len(data).to_bytes(4, "little") + data


def _py2_int(value: int) -> bytes:
    return b"J" + value.to_bytes(4, "little", signed=True)


def _py2_uint8_array(rows: np.ndarray) -> bytes:
    """A uint8 (N, M) array exactly as numpy 1 under Python 2 pickled the official CIFAR batches:
    ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b')`` then its state, with a
    ``numpy.dtype('u1', 0, 1)``."""
    dtype = (b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R"
             + b"(K\x03" + _py2_str(b"|") + b"NNN" + _py2_int(-1) + _py2_int(-1) + b"K\x00tb")
    shape = _py2_int(rows.shape[0]) + _py2_int(rows.shape[1]) + b"\x86"
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b") + b"\x87R"
            + b"(K\x01" + shape + dtype + b"\x89" + _py2_str(rows.tobytes()) + b"tb")


def _py2_pickle(obj: dict[bytes, object]) -> bytes:
    """The official files' format, written without Python 2: a dict of py2 strs, ints, lists and arrays."""

    def value(v: object) -> bytes:
        if isinstance(v, bytes):
            return _py2_str(v)
        if isinstance(v, np.ndarray):
            return _py2_uint8_array(v)
        if isinstance(v, int):
            return _py2_int(v)
        return b"](" + b"".join(value(x) for x in v) + b"e"

    return b"\x80\x02}(" + b"".join(_py2_str(k) + value(v) for k, v in obj.items()) + b"u."


def test_cifar_reads_python2_pickles_as_the_official_files_are_written(tmp_path: Path) -> None:
    folder, labels, test_rows = make_cifar10(tmp_path)
    for path in folder.iterdir():  # rewrite every file in the py2 cPickle format, numpy.core names
        path.write_bytes(_py2_pickle(pickle.loads(path.read_bytes(), encoding="bytes")))
    assert b"numpy.core.multiarray\n_reconstruct" in (folder / "test_batch").read_bytes()
    splits = load_cifar(tmp_path)
    assert splits["train"].classes == tuple(C10_NAMES)
    assert splits["test"].inputs.reshape(7, -1).numpy().tolist() == test_rows.tolist()
    assert sorted(torch.cat([splits["train"].targets, splits["val"].targets]).tolist()) == sorted(labels.tolist())


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_reads_python3_pickles_of_every_protocol(tmp_path: Path, protocol: int) -> None:
    folder, _, test_rows = make_cifar10(tmp_path)
    for path in folder.iterdir():
        path.write_bytes(pickle.dumps(pickle.loads(path.read_bytes(), encoding="bytes"), protocol=protocol))
    assert load_cifar(tmp_path)["test"].inputs.reshape(7, -1).numpy().tolist() == test_rows.tolist()


class _RunsCode:
    """Unpickles as ``func(*args)``: what a crafted dataset file would do."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_pickle_that_runs_code_is_refused_and_the_code_never_runs(tmp_path: Path, protocol: int) -> None:
    import os

    folder, _, _ = make_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    path = folder / "data_batch_1"
    path.write_bytes(pickle.dumps({b"labels": _RunsCode(os.system, f"touch {marker}"),
                                   b"data": np.zeros((1, 3072), np.uint8)}, protocol=protocol))
    with pytest.raises(DataError) as exc:
        load_cifar(tmp_path)
    assert not marker.exists()
    assert str(path) in str(exc.value) and f"{os.system.__module__}.system" in str(exc.value)


@pytest.mark.parametrize("func", [eval, getattr, pickle.loads], ids=["eval", "getattr", "pickle.loads"])
def test_cifar_refuses_every_callable_outside_the_official_types(tmp_path: Path, func) -> None:
    folder, _, _ = make_cifar10(tmp_path)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": _RunsCode(func, "1")}, protocol=2))
    # protocol 2 names builtins "__builtin__" and pickle.loads "_pickle": match the function's name
    with pytest.raises(DataError, match=rf"batches.meta refers to \S+\.{func.__name__}, .*refused"):
        load_cifar(tmp_path)


def test_cifar_refuses_codecs_other_than_latin1(tmp_path: Path) -> None:
    import codecs

    folder, _, _ = make_cifar10(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({b"labels": _RunsCode(codecs.encode, "x", "rot13")}, protocol=2))
    with pytest.raises(DataError, match="test_batch.*only latin1"):
        load_cifar(tmp_path)
