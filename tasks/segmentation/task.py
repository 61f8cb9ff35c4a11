"""The segmentation task: generated scenes (or Cityscapes / VOC), PSPNet models, mIoU.

Inputs are uint8 images (N, 3, H, W) and targets uint8 label maps (N, H, W) with
255 as the ignore label. Training loss: per-pixel cross-entropy ignoring 255.
Metrics from a dataset-level confusion matrix (:mod:`tasks.segmentation.metric`):
mIoU, pixel accuracy and each class's IoU, in percent.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError
from bench.paths import cache_dir, load_checked, save_checked
from bench.registry import DATASETS, MODELS, TASKS
from bench.task import Split, Task
from tasks.segmentation import io, scenes
from tasks.segmentation.metric import ConfusionMatrix
from tasks.segmentation.models import DEEPLAB_FEATURE_POINTS, FEATURE_POINTS

IGNORE_INDEX = 255


@TASKS.register("segmentation")
class SegmentationTask(Task):
    """Semantic segmentation with per-pixel cross-entropy, scored by dataset-level mIoU."""

    name = "segmentation"
    metrics = ("miou", "pixel_acc")
    metric_range = (0.0, 100.0)  # every metric (per-class ones too) is a percentage
    augmentations = {"none": 1, "hflip": 2}
    ignore_index = IGNORE_INDEX  # label of pixels no loss or metric counts

    def feature_points(self, model_name: str) -> dict[str, str]:
        if model_name.startswith("pspnet_"):
            return FEATURE_POINTS
        if model_name.startswith("deeplabv3_"):
            return DEEPLAB_FEATURE_POINTS
        factory = MODELS.get(model_name) if model_name in MODELS else None  # an OpenMMLab segmentor's own
        return dict(getattr(factory, "feature_points", {}))

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs.float() / 255.0 - 0.5) / 0.25

    def collate(self, split: Split, indices, variants, augmentation):
        from bench.task import Batch

        inputs = self.prepare(self.augment(split.inputs[indices], variants, augmentation))
        targets = self.augment(split.targets[indices], variants, augmentation).long()
        return Batch(inputs, targets, indices, variants)

    def build_model(self, name: str, num_classes: int) -> nn.Module:
        return MODELS.get(name)(num_classes=num_classes)

    def task_losses(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"ce": F.cross_entropy(outputs, targets, ignore_index=IGNORE_INDEX)}

    def forward_train(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The task's CE, plus ``ce_aux`` for a model with auxiliary heads (an mmseg segmentor's FCNHead:
        :meth:`tasks.openmmlab.segmentor.MMSegSegmentor.auxiliary_logits`), weighted as its config says."""
        output, losses = super().forward_train(model, batch)
        auxiliary = model.auxiliary_logits() if hasattr(model, "auxiliary_logits") else []
        for i, (logits, weight) in enumerate(auxiliary):
            losses[f"ce_aux{i or ''}"] = weight * self.task_losses(logits, batch.targets)["ce"]
        return output, losses

    def evaluate(self, model: nn.Module, split: Split, batch_size: int) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        matrix = ConfusionMatrix(len(split.classes), IGNORE_INDEX)
        with torch.no_grad():
            for start in range(0, len(split), batch_size):
                logits = model(self.prepare(split.inputs[start : start + batch_size]).to(device))
                matrix.update(logits.argmax(1).cpu(), split.targets[start : start + batch_size].long())
        model.train(was_training)
        result = matrix.compute()
        per_class = {f"iou_{name}": iou for name, iou in zip(split.classes, result["iou_per_class"], strict=True)}
        return {"miou": result["miou"], "pixel_acc": result["pixel_acc"], **per_class}


def _split(images, labels, classes, source: str) -> Split:
    return Split(torch.as_tensor(np.ascontiguousarray(images)), torch.as_tensor(np.ascontiguousarray(labels)),
                 classes, source=source)


@DATASETS.register("seg_scenes")
def load_seg_scenes(train_images: int, val_images: int, test_images: int, seed: int = 0,
                    size: int = 64) -> dict[str, Split]:
    """Generated scene-parsing images (:mod:`tasks.segmentation.scenes`), cached on first use."""
    spec = dict(train=train_images, val=val_images, test=test_images, seed=seed, size=size,
                generator=scenes.GENERATOR_VERSION)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "data" / f"seg_scenes-{key}.pt"
    stored = load_checked(path, "generated dataset")  # None when absent, edited or truncated: regenerated
    if stored is None:
        stored = {}
        for offset, (name, count) in enumerate((("train", train_images), ("val", val_images), ("test", test_images))):
            images, labels = scenes.generate_scenes(count, seed=seed * 1000 + offset, size=size)
            stored[name] = {"inputs": torch.from_numpy(images), "targets": torch.from_numpy(labels)}
        save_checked(stored, path)
    return {name: Split(part["inputs"], part["targets"], scenes.CLASSES, source=f"seg_scenes:{key}:{name}")
            for name, part in stored.items()}


def _real(loader, classes: tuple[str, ...], splits: dict[str, str]):
    """A real-format dataset read from ``--data-root``; images must share one size to be batched."""

    def load(root: str | None = None) -> dict[str, Split]:
        if root is None:
            raise ConfigError(f"dataset {loader.__name__}: give the dataset folder with --data-root")
        out = {}
        for name, folder in splits.items():
            images, labels, _ = loader(root, folder)
            if len({image.shape for image in images}) > 1:
                raise ConfigError(f"{root}/{folder}: images of different sizes; resize or crop them first")
            out[name] = _split(np.stack(images), np.stack(labels), classes, f"{loader.__name__}:{root}:{folder}")
        return out

    return load


DATASETS.register("cityscapes")(_real(io.load_cityscapes, io.CITYSCAPES_CLASSES,
                                      {"train": "train", "val": "val", "test": "val"}))
DATASETS.register("voc")(_real(io.load_voc, io.VOC_CLASSES, {"train": "train", "val": "val", "test": "val"}))
