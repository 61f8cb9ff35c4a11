import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.errors import ConfigError
from bench.protocol import get_protocol
from bench.registry import DATASETS, TASKS
from bench.paths import cache_dir
from tasks.classification import shapes


def macs(model, size=32):
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 2


def test_generator_is_deterministic_and_seed_dependent():
    a_img, a_lab = shapes.generate(3, seed=11)
    b_img, b_lab = shapes.generate(3, seed=11)
    c_img, _ = shapes.generate(3, seed=12)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)
    assert a_img.shape == (3 * 20, 3, 32, 32) and a_img.dtype == np.uint8


def test_classes_share_structure():
    assert len(shapes.CLASSES) >= 20
    silhouettes = {c.split("-")[0] for c in shapes.CLASSES}
    textures = {c.split("-")[1] for c in shapes.CLASSES}
    assert len(silhouettes) * len(textures) == len(shapes.CLASSES)


def test_label_noise_touches_only_training_labels():
    clean_img, clean = shapes.generate(20, seed=3)
    noisy_img, noisy = shapes.generate(20, seed=3, label_noise=0.5)
    assert np.array_equal(clean_img, noisy_img)
    changed = (clean != noisy).mean()
    assert 0.3 < changed < 0.6  # half are redrawn; 1/20 of those land on the true class
    splits = DATASETS.get("shapes20")(train_per_class=5, val_per_class=5, test_per_class=5, label_noise=1.0)
    for name in ("val", "test"):
        counts = torch.bincount(splits[name].targets, minlength=20)
        assert (counts == 5).all(), f"{name} labels must stay clean and balanced"


def test_dataset_is_cached_on_first_use():
    params = dict(train_per_class=4, val_per_class=2, test_per_class=2, seed=77)
    first = DATASETS.get("shapes20")(**params)
    cached = sorted((cache_dir() / "data").glob("shapes20-*.pt"))
    assert cached
    second = DATASETS.get("shapes20")(**params)
    for split in ("train", "val", "test"):
        assert torch.equal(first[split].inputs, second[split].inputs)
    assert len(first["train"]) == 80 and len(first["val"]) == 40


def test_splits_are_disjoint_draws():
    splits = DATASETS.get("shapes20")(train_per_class=5, val_per_class=5, test_per_class=5, seed=1)
    assert not torch.equal(splits["train"].inputs[:10], splits["test"].inputs[:10])


@pytest.mark.parametrize("protocol_name", ["classification-smoke", "classification-mini"])
def test_student_is_at_least_5x_cheaper(protocol_name):
    protocol = get_protocol(protocol_name)
    task = TASKS.get("classification")()
    teacher = task.build_model(protocol.teacher.model, 20)
    student = task.build_model(protocol.student, 20)
    assert macs(teacher) >= 5 * macs(student)


def test_feature_points_resolve_to_modules():
    task = TASKS.get("classification")()
    model = task.build_model("tinyresnet_12", 20)
    for point in ("backbone.out", "embedding"):
        model.get_submodule(task.module_path("tinyresnet_12", point))
    assert task.module_path("tinyresnet_12", "logits") == ""
    with pytest.raises(ConfigError, match="backbone.out"):
        task.module_path("tinyresnet_12", "neck.p3")


def test_hflip_variants():
    task = TASKS.get("classification")()
    images = torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).reshape(2, 3, 2, 2)
    out = task.augment(images, torch.tensor([0, 1]), "hflip")
    assert torch.equal(out[0], images[0]) and torch.equal(out[1], images[1].flip(-1))
    with pytest.raises(ConfigError, match="hflip"):
        task.num_augment_variants("mixup")


def test_topk_metrics_on_a_known_model():
    from bench.task import Split

    task = TASKS.get("classification")()
    targets = torch.tensor([0, 1, 2, 3])
    inputs = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)

    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            # sample i ranks class (i + 1) % 6 first and its true class i second, except sample 3
            logits = torch.full((4, 6), -10.0)
            for i in range(4):
                logits[i, (i + 1) % 6] = 5.0
                logits[i, i] = 4.0 if i < 3 else -20.0
            logits[0, 0] = 6.0  # sample 0 is right at top-1
            self.logits = logits

        def forward(self, x):
            return self.logits[: len(x)] + self.w

    metrics = task.evaluate(Fixed(), Split(inputs, targets, tuple("abcdef")), batch_size=4)
    assert metrics == {"top1": 25.0, "top5": 75.0}
