"""The classification task: data, augmentation, loss, metric, feature points.

Datasets are registered in ``DATASETS`` by name (``shapes20`` generated; the
real-format adapters ``cifar10``, ``cifar100`` and ``imagefolder`` read a path
the user gives). Metrics are top-1 and top-5 accuracy in percent on a split.
"""

from __future__ import annotations

import hashlib
import json

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError
from bench.paths import cache_dir, load_checked, save_checked
from bench.registry import DATASETS, MODELS, TASKS
from bench.task import Split, Task
from tasks.classification import real, shapes
from tasks.classification.models import TINYRESNET_FEATURE_POINTS

#: per-channel normalisation of [0, 1] pixels, the same for every dataset.
MEAN, STD = 0.5, 0.25


@TASKS.register("classification")
class ClassificationTask(Task):
    """Image classification with cross-entropy training and top-1/top-5 accuracy."""

    name = "classification"
    metrics = ("top1", "top5")
    metric_range = (0.0, 100.0)  # every metric (per-class ones too) is a percentage
    augmentations = {"none": 1, "hflip": 2}

    def feature_points(self, model_name: str) -> dict[str, str]:
        """The points a model declares (the zoo's factories carry ``feature_points``, see
        :mod:`tasks.classification.cifar_zoo.registration`); the tinyresnet family's are fixed."""
        declared = getattr(MODELS.get(model_name), "feature_points", None) if model_name in MODELS else None
        if declared is not None:
            return dict(declared)
        if model_name.startswith("tinyresnet_"):
            return TINYRESNET_FEATURE_POINTS
        return {}

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs.float() / 255.0 - MEAN) / STD

    def build_model(self, name: str, num_classes: int) -> nn.Module:
        return MODELS.get(name)(num_classes=num_classes)

    def task_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(outputs, targets)}

    def evaluate(self, model: nn.Module, split: Split, batch_size: int) -> dict[str, float]:
        """Top-1 and top-5 accuracy (percent) of ``model`` on ``split``, in eval mode."""
        was_training = model.training
        model.eval()
        correct1 = correct5 = 0
        k = min(5, len(split.classes))
        device = next(model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(split), batch_size):
                logits = model(self.prepare(split.inputs[start : start + batch_size]).to(device)).cpu()
                targets = split.targets[start : start + batch_size]
                topk = logits.topk(k, dim=1).indices
                correct1 += (topk[:, 0] == targets).sum().item()
                correct5 += (topk == targets[:, None]).any(dim=1).sum().item()
        model.train(was_training)
        n = len(split)
        return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n}


@DATASETS.register("shapes20")
def load_shapes20(train_per_class: int, val_per_class: int, test_per_class: int, label_noise: float = 0.0,
                  seed: int = 0, size: int = 32) -> dict[str, Split]:
    """The generated ``shapes20`` dataset (see :mod:`tasks.classification.shapes`), cached on first use.

    Each split has its own generator seed derived from ``seed``; label noise is
    applied to the training split only.
    """
    spec = dict(train=train_per_class, val=val_per_class, test=test_per_class, label_noise=label_noise,
                seed=seed, size=size, generator=shapes.GENERATOR_VERSION)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "data" / f"shapes20-v{shapes.GENERATOR_VERSION}-{key}.pt"
    stored = load_checked(path, "generated dataset")  # None when absent, edited or truncated: regenerated
    if stored is None:
        stored = {}
        for offset, (split, per_class) in enumerate(
            (("train", train_per_class), ("val", val_per_class), ("test", test_per_class))
        ):
            images, labels = shapes.generate(
                per_class, seed=seed * 1000 + offset, size=size,
                label_noise=label_noise if split == "train" else 0.0,
            )
            stored[split] = {"inputs": torch.from_numpy(images), "targets": torch.from_numpy(labels)}
        save_checked(stored, path)
    return {
        name: Split(part["inputs"], part["targets"], shapes.CLASSES, source=f"shapes20:{key}:{name}")
        for name, part in stored.items()
    }


def _real(loader, **fixed):
    """Register a real-format loader that needs the user's ``--data-root``."""

    def load(root: str | None = None, **params) -> dict[str, Split]:
        if root is None:
            raise ConfigError(f"dataset {loader.__name__}: give the dataset folder with --data-root")
        return loader(root, **fixed, **params)

    return load


DATASETS.register("cifar10")(_real(real.load_cifar, num_classes=10))
DATASETS.register("cifar100")(_real(real.load_cifar, num_classes=100))
DATASETS.register("imagefolder")(_real(real.load_image_folder))
