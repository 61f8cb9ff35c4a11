"""The pose task: top-down crops of generated figures (or real COCO keypoints), heatmap models,
OKS AP and PCK.

Inputs are uint8 crops (N, 3, H, W); targets hold keypoints (N, K, 3) as
[x, y, visibility] in continuous crop coordinates (pixel c covers [c, c + 1)), and
batches carry the Gaussian target heatmaps and per-keypoint target weights
(:mod:`tasks.pose.heatmaps`). Training loss: SimpleBaseline's joints MSE.
Metrics: OKS AP / AP50 / AP75 (pycocotools, the dataset's sigmas) and PCK@0.1
of the box size (the crop's longer side).
"""

from __future__ import annotations

import hashlib
import json

import torch
from torch import nn

from bench.errors import ConfigError, DataError
from bench.paths import cache_dir, load_checked, save_checked
from bench.registry import DATASETS, MODELS, TASKS
from bench.task import Batch, Split, Task
from tasks.pose import coco_keypoints, figures, heatmaps
from tasks.pose.metric import oks_ap, pck
from tasks.pose.models import FEATURE_POINTS

HEATMAP_STRIDE = 4
SIGMA = 2.0


@TASKS.register("pose")
class PoseTask(Task):
    """Top-down keypoint estimation by heatmap regression."""

    name = "pose"
    metrics = ("ap", "ap50", "ap75", "pck")
    metric_range = (0.0, 100.0)  # every metric (per-class ones too) is a percentage
    augmentations = {"none": 1, "hflip": 2}

    def feature_points(self, model_name: str) -> dict[str, str]:
        return FEATURE_POINTS if model_name.startswith("pose_") else {}

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs.float() / 255.0 - 0.5) / 0.25

    def flip_keypoints(self, keypoints: torch.Tensor, width: int, flip_pairs) -> torch.Tensor:
        """Mirror x and swap left/right keypoints; unlabelled keypoints stay at zero.

        Coordinates are continuous with pixel c covering [c, c + 1), so the mirror of x is W - x.
        """
        flipped = keypoints.clone()
        flipped[..., 0] = torch.where(keypoints[..., 2] > 0, width - keypoints[..., 0], keypoints[..., 0])
        for left, right in flip_pairs:
            flipped[..., [left, right], :] = flipped[..., [right, left], :]
        return flipped

    def collate(self, split: Split, indices, variants, augmentation) -> Batch:
        images, keypoints = split.inputs[indices], split.targets[indices].clone()
        if augmentation == "hflip":
            flip = variants.bool()
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
            keypoints[flip] = self.flip_keypoints(keypoints[flip], images.shape[-1], split.extra["flip_pairs"])
        input_hw = tuple(images.shape[-2:])
        heatmap_hw = (input_hw[0] // HEATMAP_STRIDE, input_hw[1] // HEATMAP_STRIDE)
        target, weight = heatmaps.encode(keypoints, heatmap_hw, input_hw, sigma=SIGMA)
        return Batch(self.prepare(images), {"heatmaps": torch.as_tensor(target), "weights": torch.as_tensor(weight),
                                            "keypoints": keypoints}, indices, variants)

    def build_model(self, name: str, num_classes: int) -> nn.Module:
        return MODELS.get(name)(num_classes=num_classes)

    def task_losses(self, outputs: torch.Tensor, targets: dict) -> dict[str, torch.Tensor]:
        return {"heatmap": heatmaps.heatmap_mse(outputs, targets["heatmaps"], targets["weights"])}

    def evaluate(self, model: nn.Module, split: Split, batch_size: int) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        coords, scores = [], []
        input_hw = tuple(split.inputs.shape[-2:])
        with torch.no_grad():
            for start in range(0, len(split), batch_size):
                out = model(self.prepare(split.inputs[start : start + batch_size]).to(device)).cpu()
                c, s = heatmaps.decode(out, input_hw)
                coords.append(c)
                scores.append(s)
        model.train(was_training)
        coords, scores = torch.cat(coords), torch.cat(scores)
        predictions = [
            {"image_id": i + 1, "keypoints": torch.cat([coords[i], torch.ones(len(coords[i]), 1)], dim=1),
             "score": float(scores[i].mean())}
            for i in range(len(coords))
        ]
        result = oks_ap(split.extra["coco"], predictions, split.extra["sigmas"])
        box = torch.full((len(coords),), float(max(input_hw)))
        result["pck"] = pck(coords, split.targets, box, threshold=0.1)
        return result


@DATASETS.register("figures")
def load_figures(train_images: int, val_images: int, test_images: int, seed: int = 0, height: int = 64,
                 width: int = 48) -> dict[str, Split]:
    """Generated figure crops (:mod:`tasks.pose.figures`), cached on first use."""
    spec = dict(train=train_images, val=val_images, test=test_images, seed=seed, height=height, width=width,
                generator=figures.GENERATOR_VERSION)
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "data" / f"figures-{key}.pt"
    stored = load_checked(path, "generated dataset")  # None when absent, edited or truncated: regenerated
    if stored is None:
        stored = {}
        for offset, (name, count) in enumerate((("train", train_images), ("val", val_images), ("test", test_images))):
            images, keypoints = figures.generate_crops(count, seed=seed * 1000 + offset, height=height, width=width)
            stored[name] = {"inputs": torch.from_numpy(images), "targets": torch.from_numpy(keypoints)}
        save_checked(stored, path)
    splits = {}
    for name, part in stored.items():
        ground_truth = coco_keypoints.to_coco_keypoints(part["targets"].numpy(), height, width, figures.KEYPOINTS,
                                                        figures.SKELETON)
        extra = {"coco": ground_truth, "sigmas": figures.SIGMAS, "flip_pairs": figures.FLIP_PAIRS}
        splits[name] = Split(part["inputs"], part["targets"], figures.KEYPOINTS, f"figures:{key}:{name}", extra)
    return splits


@DATASETS.register("coco_keypoints")
def load_coco_keypoints_dataset(root: str | None = None, train: str = "train2017", val: str = "val2017",
                                test: str = "val2017", height: int = 64, width: int = 48) -> dict[str, Split]:
    """Real COCO keypoints from ``--data-root``: ``annotations/person_keypoints_<split>.json`` and ``<split>/``
    images, as top-down crops of every non-crowd person (:func:`coco_keypoints.load_coco_keypoints`).

    The keypoints are the file's category's (COCO's 17, or any other set); the OKS sigmas come from
    :func:`coco_keypoints.keypoint_sigmas` and the flip pairs from the ``left_``/``right_`` names
    (:func:`coco_keypoints.flip_pairs`). Every split must list the training file's keypoints in its
    order (the model's heatmap k is keypoint k), else a DataError names both files.
    """
    if root is None:
        raise ConfigError(f"dataset coco_keypoints: give the COCO keypoints folder with --data-root; "
                          f"{coco_keypoints.LAYOUT}")
    splits: dict[str, Split] = {}
    for name, folder in (("train", train), ("val", val), ("test", test)):
        crops, keypoints, ground_truth = coco_keypoints.load_coco_keypoints_root(root, folder, height, width)
        category, path = ground_truth["categories"][0], coco_keypoints.annotation_path(root, folder)
        names = tuple(category["keypoints"])
        if name != "train" and names != splits["train"].classes:
            raise DataError(f"COCO keypoints file {path} lists the keypoints {', '.join(names)}; the training "
                            f"file {coco_keypoints.annotation_path(root, train)} lists "
                            f"{', '.join(splits['train'].classes)}: every split must list the same, in one order")
        extra = {"coco": ground_truth, "sigmas": coco_keypoints.keypoint_sigmas(category, path),
                 "flip_pairs": coco_keypoints.flip_pairs(names, path)}
        splits[name] = Split(torch.from_numpy(crops), torch.from_numpy(keypoints), names,
                             f"coco_keypoints:{root}:{folder}", extra)
    return splits
