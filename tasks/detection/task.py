"""The detection task: generated scenes or real COCO, RetinaNet models, COCO mAP.

Samples are images with a variable number of boxes, so splits hold targets as
lists of ``{"boxes": (K, 4) xyxy pixels, "labels": (K,) 1..C, "image_id"}``
and the COCO ground truth in ``split.extra["coco"]`` for pycocotools. The
training losses are the detector's own (torchvision's RetinaNet: focal loss and
box regression); methods read FPN levels and head outputs by feature point.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.errors import ConfigError, DataError
from bench.paths import cache_dir, load_checked, save_checked
from bench.registry import DATASETS, MODELS, TASKS
from bench.task import Batch, Split, Task
from tasks.detection import coco, scenes
from tasks.detection.metric import coco_map
from tasks.detection.geometry import DetectorGeometry, RetinaNetGeometry
from tasks.detection.models import FEATURE_POINTS


def detector_geometry(model_name: str) -> DetectorGeometry:
    """The frame and anchors of detector ``model_name``: a registered model that describes its own
    (``geometry()``, the OpenMMLab detectors) or the torch-native RetinaNet's."""
    factory = MODELS.get(model_name) if model_name in MODELS else None
    return factory.geometry() if hasattr(factory, "geometry") else RetinaNetGeometry()



@TASKS.register("detection")
class DetectionTask(Task):
    """Object detection trained with the detector's own losses, scored by COCO mAP."""

    name = "detection"
    metrics = ("map", "map50", "map75", "map_small", "map_medium", "map_large")
    metric_range = (0.0, 100.0)  # every metric (per-class ones too) is a percentage
    augmentations = {"none": 1, "hflip": 2}

    #: the frame and anchors of the protocol's detector (:meth:`configure`); RetinaNet's until configured
    geometry: DetectorGeometry = RetinaNetGeometry()

    def configure(self, protocol, loading=None) -> DetectionTask:
        """Take the geometry of the protocol's student (an OpenMMLab detector's own, or RetinaNet's)."""
        super().configure(protocol, loading)
        self.geometry = detector_geometry(protocol.student)
        return self

    def feature_points(self, model_name: str) -> dict[str, str]:
        if model_name.startswith("retinanet_fpn_"):
            return {**FEATURE_POINTS, "head.out": "head"}
        factory = MODELS.get(model_name) if model_name in MODELS else None
        return dict(getattr(factory, "feature_points", {}))

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        """uint8 image -> float in [0, 1]; the detector's transform normalises."""
        return inputs.float() / 255.0

    def collate(self, split: Split, indices: torch.Tensor, variants: torch.Tensor, augmentation: str) -> Batch:
        images, targets = [], []
        for index, variant in zip(indices.tolist(), variants.tolist(), strict=True):
            image, target = split.inputs[index], split.targets[index]
            boxes = target["boxes"]
            if augmentation == "hflip" and variant == 1:
                width = image.shape[-1]
                image = image.flip(-1)
                boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], dim=1)
            images.append(self.prepare(image))
            targets.append({"boxes": boxes, "labels": target["labels"], "image_id": target["image_id"]})
        return Batch(images, targets, indices, variants)

    def build_model(self, name: str, num_classes: int) -> nn.Module:
        return MODELS.get(name)(num_classes=num_classes)

    def forward_train(self, model: nn.Module, batch: Batch) -> tuple[Any, dict[str, torch.Tensor]]:
        targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in batch.targets]
        return None, model(batch.inputs, targets)

    def forward_features(self, model: nn.Module, batch: Batch) -> Any:
        """Transform, backbone and head, without decoding or NMS: what methods read."""
        if hasattr(model, "dense_outputs"):  # an OpenMMLab detector (tasks.openmmlab.detector)
            return model.dense_outputs(batch.inputs)
        images, _ = model.transform(batch.inputs)
        features = list(model.backbone(images.tensors).values())
        return model.head(features)

    def detector_frame(self, images: list[torch.Tensor], targets: list[dict]
                       ) -> tuple[tuple[int, int], list[torch.Tensor]]:
        """The frame the detector sees: ``((H, W) of the padded batch, each image's boxes in it)``.

        The detector resizes each image (longer side to 64 pixels for ``retinanet_fpn_<w>``) and pads the
        batch (:func:`tasks.detection.models.detector_transform`); its anchors are laid over the padded
        batch and its targets are the resized boxes. Methods that compare ground truth with anchors
        or feature cells (FGFI's mask, ``chen2017``'s assignment) must work in this frame, not in the
        stored image's: on real COCO the two differ (on the generated 64x64 scenes they coincide).
        The frame is the protocol's detector's (:attr:`geometry`).
        """
        return self.geometry.frame(images, targets)

    def anchors_at(self, point: str, feature_hw: tuple[int, int], image_hw: tuple[int, int]) -> torch.Tensor:
        """The detector's anchors (xyxy, location-major) at feature point ``point`` of one image."""
        return self.geometry.anchors_at(point, feature_hw, image_hw)

    def anchors_all(self, image_hw: tuple[int, int]) -> torch.Tensor:
        """Every anchor of one image in the order of the head's outputs (levels p2, p3, p4 for RetinaNet)."""
        return self.geometry.anchors_all(image_hw)

    def evaluate(self, model: nn.Module, split: Split, batch_size: int) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        detections = []
        with torch.no_grad():
            for start in range(0, len(split), batch_size):
                chunk = range(start, min(start + batch_size, len(split)))
                images = [self.prepare(split.inputs[i]).to(device) for i in chunk]
                for i, out in zip(chunk, model(images), strict=True):
                    detections.append({"image_id": split.targets[i]["image_id"], "boxes": out["boxes"].cpu(),
                                       "scores": out["scores"].cpu(), "labels": out["labels"].cpu()})
        model.train(was_training)
        return coco_map(split.extra["coco"], detections)


def _as_split(images: list, annotations: list[dict], classes: tuple[str, ...], ground_truth: dict,
              source: str) -> Split:
    targets = [
        {"boxes": torch.as_tensor(a["boxes"], dtype=torch.float32).reshape(-1, 4),
         "labels": torch.as_tensor(a["labels"], dtype=torch.int64), "image_id": int(a["image_id"])}
        for a in annotations
    ]
    return Split(images, targets, classes, source=source, extra={"coco": ground_truth})


@DATASETS.register("scenes")
def load_scenes(train_images: int, val_images: int, test_images: int, seed: int = 0,
                size: int = 64) -> dict[str, Split]:
    """Generated detection scenes (:mod:`tasks.detection.scenes`), cached on first use."""
    spec = dict(train=train_images, val=val_images, test=test_images, seed=seed, size=size,
                generator=scenes.GENERATOR_VERSION)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "data" / f"scenes-{key}.pt"
    stored = load_checked(path, "generated dataset")  # None when absent, edited or truncated: regenerated
    if stored is None:
        stored = {}
        for offset, (name, count) in enumerate((("train", train_images), ("val", val_images), ("test", test_images))):
            images, annotations = scenes.generate_scenes(count, seed=seed * 1000 + offset, size=size)
            stored[name] = {
                "images": torch.from_numpy(np.ascontiguousarray(images)),
                "boxes": [torch.as_tensor(a["boxes"], dtype=torch.float32) for a in annotations],
                "labels": [torch.as_tensor(a["labels"], dtype=torch.int64) for a in annotations],
            }
        save_checked(stored, path)
    splits = {}
    for name, part in stored.items():
        annotations = [{"boxes": b.numpy(), "labels": lab.numpy(), "image_id": i + 1}
                       for i, (b, lab) in enumerate(zip(part["boxes"], part["labels"], strict=True))]
        sizes = [(size, size)] * len(annotations)
        ground_truth = coco.to_coco(annotations, scenes.CLASSES, sizes)
        splits[name] = _as_split(part["images"], annotations, scenes.CLASSES, ground_truth, f"scenes:{key}:{name}")
    return splits


@DATASETS.register("coco")
def load_coco_dataset(root: str | None = None, train: str = "train2017", val: str = "val2017",
                      test: str = "val2017") -> dict[str, Split]:
    """Real COCO from ``--data-root``: ``annotations/instances_<split>.json`` and ``<split>/`` images.

    Every split must list the training split's categories (the same names in the same order of
    id): the model's class k is the k-th category, so a test file with other categories would be
    scored against the wrong classes. A difference raises a DataError naming both files.
    """
    if root is None:
        raise ConfigError(f"dataset coco: give the COCO folder with --data-root; {coco.LAYOUT}")
    splits = {}
    for name, folder in (("train", train), ("val", val), ("test", test)):
        images, targets, classes, ground_truth = coco.load_coco_root(root, folder)
        if name != "train":
            _check_same_categories(splits["train"].classes, classes, coco.annotation_path(root, train),
                                   coco.annotation_path(root, folder))
        tensors = [torch.from_numpy(np.ascontiguousarray(image)) for image in images]
        splits[name] = _as_split(tensors, targets, classes, ground_truth, f"coco:{root}:{folder}")
    return splits


def _check_same_categories(train: tuple[str, ...], other: tuple[str, ...], train_file, other_file) -> None:
    if tuple(train) == tuple(other):
        return
    only_train = [c for c in train if c not in other]
    only_other = [c for c in other if c not in train]
    if only_train or only_other:
        what = (f"only in the training file: {', '.join(only_train) or '(none)'}; only in {other_file}: "
                f"{', '.join(only_other) or '(none)'}")
    else:
        what = f"the same names in another order of category id: {', '.join(train)} vs {', '.join(other)}"
    raise DataError(f"COCO categories of {other_file} differ from the training file {train_file} ({what}); "
                    "every split must list the same categories")
