"""The classification task: data, augmentation, loss, metric, feature points.

Datasets are registered in ``DATASETS`` by name (``shapes20`` generated; the
real-format adapters ``cifar10``, ``cifar100``, ``imagefolder`` and ``imagenet``
read a path the user gives; the last two stream, see :mod:`bench.streaming`).
Metrics are top-1 and top-5 accuracy in percent on a split.

The task is configured per protocol (:meth:`ClassificationTask.configure`): the
protocol's normalisation (default 0.5/0.25 on every channel) and the evaluation
view of its augmentation (:mod:`tasks.classification.augment`).
"""

from __future__ import annotations

import hashlib
import json
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError
from bench.paths import cache_dir, load_checked, save_checked
from bench.registry import DATASETS, MODELS, TASKS
from bench.streaming import Loading, StreamingSplit, stream
from bench.task import Split, Task
from tasks.classification import augment, imagenet, real, shapes
from tasks.classification.models import TINYRESNET_FEATURE_POINTS

#: normalisation of [0, 1] pixels when the protocol sets none, the same on every channel.
MEAN, STD = 0.5, 0.25


@TASKS.register("classification")
class ClassificationTask(Task):
    """Image classification with cross-entropy training and top-1/top-5 accuracy."""

    name = "classification"
    metrics = ("top1", "top5")
    metric_range = (0.0, 100.0)  # every metric (per-class ones too) is a percentage
    augmentations = {"none": 1, "hflip": 2, **dict.fromkeys(augment.RANDOM)}
    #: the protocol's ``(mean, std)`` per channel; empty: :data:`MEAN`, :data:`STD`
    normalization: tuple = ()
    #: the protocol's training augmentation, whose evaluation view :meth:`evaluate` uses
    augmentation: str | None = None

    def configure(self, protocol, loading: Loading | None = None) -> ClassificationTask:
        """Use ``protocol``'s normalisation and its augmentation's evaluation view (unknown augmentations
        are refused here, listing the valid ones)."""
        super().configure(protocol, loading)
        self.num_augment_variants(protocol.augmentation)
        self.normalization, self.augmentation = protocol.normalization, protocol.augmentation
        return self

    def preprocessing(self) -> dict:
        return {"normalization": [list(v) for v in self.normalization]} if self.normalization else {}

    def load_splits(self, dataset, root=None):
        """The dataset's splits, checked against the configured protocol: images of varying size need a
        resizing augmentation, and the normalisation needs one value per image channel."""
        splits = super().load_splits(dataset, root)
        train = splits["train"]
        varying = [s.source for s in splits.values() if isinstance(s, StreamingSplit) and s.extra.get("sizes_vary")]
        if varying and self.augmentation not in augment.RESIZING:
            raise ConfigError(f"dataset {dataset.get('name')!r} ({varying[0]}) has images of varying size, which "
                              f"augmentation {self.augmentation!r} does not resize; use one of "
                              f"{', '.join(sorted(augment.RESIZING))}, or the dataset's key 'size'")
        if self.normalization and len(train):
            channels = train.read(0).shape[0] if isinstance(train, StreamingSplit) else train.inputs.shape[1]
            if channels != len(self.normalization[0]):
                raise ConfigError(f"protocol key 'normalization' has {len(self.normalization[0])} values per "
                                  f"statistic, the images of {train.source} have {channels} channels")
        return splits

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
        """uint8 images to the model's input: [0, 1] pixels normalised as torchvision's ``Normalize(mean,
        std)`` does, with the protocol's per-channel statistics (default :data:`MEAN`, :data:`STD`)."""
        pixels = inputs.float() / 255.0
        if not self.normalization:
            return (pixels - MEAN) / STD
        mean, std = (torch.tensor(v, dtype=pixels.dtype).view(-1, 1, 1) for v in self.normalization)
        return (pixels - mean) / std

    def augment(self, inputs: torch.Tensor, variants: torch.Tensor, augmentation: str) -> torch.Tensor:
        """``none`` and ``hflip`` as every task has them; the random ones of :mod:`tasks.classification.augment`
        with ``variants`` as the per-sample seeds."""
        if augmentation in augment.RANDOM:
            return augment.apply_random(inputs, variants, augmentation)
        return super().augment(inputs, variants, augmentation)

    def build_model(self, name: str, num_classes: int) -> nn.Module:
        return MODELS.get(name)(num_classes=num_classes)

    def task_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(outputs, targets)}

    def evaluate(self, model: nn.Module, split: Split | StreamingSplit, batch_size: int) -> dict[str, float]:
        """Top-1 and top-5 accuracy (percent) of ``model`` on ``split``, in eval mode, on the evaluation view
        of the protocol's augmentation (e.g. resize 256 + centre crop 224)."""
        was_training = model.training
        model.eval()
        correct1 = correct5 = 0
        k = min(5, len(split.classes))
        device = next(model.parameters()).device
        with torch.no_grad():
            for inputs, targets in self.eval_batches(split, batch_size):
                logits = model(inputs.to(device, non_blocking=True)).cpu()
                topk = logits.topk(k, dim=1).indices
                correct1 += (topk[:, 0] == targets).sum().item()
                correct5 += (topk == targets[:, None]).any(dim=1).sum().item()
        model.train(was_training)
        n = len(split)
        return {"top1": 100.0 * correct1 / n, "top5": 100.0 * correct5 / n}

    def eval_batches(self, split: Split | StreamingSplit, batch_size: int):
        """``(inputs, targets)`` of ``split`` in order, prepared for evaluation; a streaming split is read by
        the loader's workers."""
        if isinstance(split, StreamingSplit):
            keys = ([(i, 0) for i in range(start, min(start + batch_size, len(split)))]
                    for start in range(0, len(split), batch_size))
            for inputs, targets, _, _ in stream(partial(self.eval_sample, split), keys, self.loading):
                yield inputs, targets
            return
        for start in range(0, len(split), batch_size):
            images = augment.eval_view(split.inputs[start : start + batch_size], self.augmentation)
            yield self.prepare(images), split.targets[start : start + batch_size]

    def eval_sample(self, split: StreamingSplit, index: int, _variant: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``index`` of a streaming split as evaluation sees it, with its target."""
        image = augment.eval_view(split.read(index)[None], self.augmentation)
        return self.prepare(image)[0], split.targets[index]


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
DATASETS.register("imagenet")(_real(imagenet.load_imagenet))
