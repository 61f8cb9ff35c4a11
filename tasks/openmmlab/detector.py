"""An mmdet detector behind KDBench's detection task (one-stage, e.g. RetinaNet, or two-stage, e.g. Faster R-CNN).

:class:`MMDetDetector` takes what torchvision's detectors take and gives what they give, so the task,
the engine and every detection method use it unchanged:

* ``model(images, targets)`` in training: images are the task's float tensors in [0, 1] (each its own
  size), targets ``{"boxes": xyxy pixels, "labels": 1..C}``; the result is the task's loss terms, mmdet's
  losses summed by kind: ``classification`` (every ``loss_*cls*``, the RPN's included),
  ``bbox_regression`` (every ``loss_*bbox*``), others under their own name (``loss_iou`` -> ``iou``);
* ``model(images)`` in evaluation: ``[{"boxes", "scores", "labels" 1..C}]`` in each image's own pixels,
  which the task scores with pycocotools as it does torchvision's;
* :meth:`MMDetDetector.dense_outputs`: the dense head's raw outputs without decoding or NMS (what the
  teacher's features are read from).

Images are resized, normalised and padded by torchvision's ``GeneralizedRCNNTransform`` with the
config's ``kdbench_frame`` (min and max size, mean and std on the [0, 1] scale, size divisor): the
same transform as the torch-native detectors, so the frame methods compute in
(:class:`MMDetGeometry`) is the detector's. mmdet's own data preprocessor is not used; mmdet sees
the padded batch with ``scale_factor`` 1 and its boxes are mapped back by the transform.

Feature points are taps (identity modules under ``taps``) that forward hooks feed:
``neck.p<k>`` the neck's output at stride 2^k, ``head.out`` the dense head's (the RetinaNet head, or
a two-stage detector's RPN) ``{"cls_logits": (B, N, C), "bbox_regression": (B, N, 4)}`` over all N
anchors, level after level, location-major, a location's anchors adjacent: the layout of
torchvision's RetinaNet head and of :meth:`MMDetGeometry.anchors_all`.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import torch
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from bench.errors import ConfigError
from tasks.openmmlab.models import accept_openmmlab_keys
from tasks.detection.geometry import DetectorGeometry


def dense_head_key(model_cfg: dict) -> str:
    """The config key of the head that scores anchors: ``bbox_head`` of a one-stage detector, else ``rpn_head``."""
    for key in ("bbox_head", "rpn_head"):
        if isinstance(model_cfg.get(key), dict) and "anchor_generator" in model_cfg[key]:
            return key
    raise ConfigError(f"model {model_cfg.get('type')!r}: KDBench needs an anchor-based dense head "
                      "(model.bbox_head or model.rpn_head with an anchor_generator)")


def level_strides(model_cfg: dict) -> dict[str, int]:
    """``{"neck.p<k>": 2^k}`` for each level of the dense head's anchor generator, in its order."""
    strides = model_cfg[dense_head_key(model_cfg)]["anchor_generator"]["strides"]
    found = {}
    for stride in strides:
        value = stride[0] if isinstance(stride, (list, tuple)) else stride
        level = int(round(math.log2(value)))
        if 2**level != value:
            raise ConfigError(f"anchor stride {stride}: KDBench names levels p<k> at stride 2^k")
        found[f"neck.p{level}"] = int(value)
    return found


def feature_points(model_cfg: dict) -> dict[str, str]:
    """Feature point -> tap module of an mmdet detector built from ``model_cfg``."""
    points = {point: f"taps.{point.replace('.', '_')}" for point in level_strides(model_cfg)}
    return {**points, "head.out": "taps.head_out"}


class MMDetGeometry(DetectorGeometry):
    """The frame (``kdbench_frame`` of the config) and anchors (the dense head's anchor generator) of an mmdet
    detector."""

    def __init__(self, model_cfg: dict, settings: dict[str, Any]):
        self.dense_head = dense_head_key(model_cfg)
        self.anchor_cfg = model_cfg[self.dense_head]["anchor_generator"]
        self.level_strides = level_strides(model_cfg)
        frame = dict(settings.get("frame") or {})
        preprocessor = settings.get("data_preprocessor") or {}
        self.min_size = frame.get("min_size", 800)
        self.max_size = frame.get("max_size", 1333)
        self.mean = frame.get("mean") or [v / 255 for v in preprocessor.get("mean", (123.675, 116.28, 103.53))]
        self.std = frame.get("std") or [v / 255 for v in preprocessor.get("std", (58.395, 57.12, 57.375))]
        self.size_divisible = frame.get("size_divisible", preprocessor.get("pad_size_divisor", 32))

    def frame_transform(self) -> GeneralizedRCNNTransform:
        return GeneralizedRCNNTransform(self.min_size, self.max_size, list(self.mean), list(self.std),
                                        size_divisible=self.size_divisible)

    @cached_property
    def anchor_generator(self):
        from tasks.openmmlab import require

        require("mmdet")
        from mmdet.registry import TASK_UTILS

        return TASK_UTILS.build(dict(self.anchor_cfg))

    def anchors_at(self, point: str, feature_hw: tuple[int, int], image_hw: tuple[int, int]) -> torch.Tensor:
        self.check_point(point)
        level = list(self.level_strides).index(point)
        return self.anchor_generator.single_level_grid_priors(tuple(feature_hw), level, dtype=torch.float32,
                                                             device="cpu")  # mmdet's default is cuda


def dense_layout(cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor], num_anchors: int
                 ) -> dict[str, torch.Tensor]:
    """mmdet's per-level (B, A*C, H, W) scores and (B, A*4, H, W) deltas as torchvision's RetinaNet head
    gives them: ``cls_logits`` (B, N, C) and ``bbox_regression`` (B, N, 4), N = sum H*W*A."""
    batch = cls_scores[0].shape[0]
    classes = cls_scores[0].shape[1] // num_anchors
    return {
        "cls_logits": torch.cat([c.permute(0, 2, 3, 1).reshape(batch, -1, classes) for c in cls_scores], dim=1),
        "bbox_regression": torch.cat([b.permute(0, 2, 3, 1).reshape(batch, -1, 4) for b in bbox_preds], dim=1),
    }


def task_losses(losses: dict[str, Any]) -> dict[str, torch.Tensor]:
    """mmdet's loss dict as the detection task's terms: per-level lists summed, then summed by kind."""
    terms: dict[str, torch.Tensor] = {}
    for key, value in losses.items():
        if "loss" not in key:  # mmdet also reports accuracies ("acc"): not losses
            continue
        total = sum(value) if isinstance(value, (list, tuple)) else value
        name = ("classification" if "cls" in key else "bbox_regression" if "bbox" in key
                else key.removeprefix("loss_"))
        terms[name] = terms[name] + total if name in terms else total
    return terms


class MMDetDetector(nn.Module):
    """An mmdet detector (``core``) with the interface of torchvision's detectors; see the module docstring."""

    def __init__(self, core: nn.Module, geometry: MMDetGeometry):
        super().__init__()
        self.core = core
        self._register_load_state_dict_pre_hook(accept_openmmlab_keys, with_module=True)
        self.geometry = geometry
        self.transform = geometry.frame_transform()
        self.levels = list(geometry.level_strides)
        self.taps = nn.ModuleDict({point.replace(".", "_"): nn.Identity() for point in [*self.levels, "head.out"]})
        if not hasattr(core, "neck") or core.neck is None:
            raise ConfigError("KDBench reads an mmdet detector's levels at its neck: the config has no model.neck")
        self.dense_head_key = geometry.dense_head  # a name, not a second registration of the module
        core.neck.register_forward_hook(self._tap_levels)
        self.dense_head.register_forward_hook(self._tap_head)

    @property
    def dense_head(self) -> nn.Module:
        """The head that scores anchors (``core.bbox_head`` or ``core.rpn_head``); read through ``core`` only, so
        the state dict names each tensor once."""
        return getattr(self.core, self.dense_head_key)

    def _tap_levels(self, _module: nn.Module, _inputs: tuple, outputs: tuple) -> tuple:
        if len(outputs) != len(self.levels):
            raise ConfigError(f"the neck gives {len(outputs)} levels and the anchor generator has {len(self.levels)} "
                              "strides; they must match")
        return tuple(self.taps[point.replace(".", "_")](level) for point, level in zip(self.levels, outputs,
                                                                                       strict=True))

    def _tap_head(self, _module: nn.Module, _inputs: tuple, outputs: tuple) -> None:
        tap = self.taps["head_out"]
        if tap._forward_hooks:  # laid out only when a method reads it
            tap(dense_layout(outputs[0], outputs[1], self.dense_head.num_base_priors))

    def _samples(self, image_sizes: list[tuple[int, int]], padded_hw: tuple[int, int], targets=None) -> list:
        from mmdet.structures import DetDataSample
        from mmengine.structures import InstanceData

        samples = []
        for i, size in enumerate(image_sizes):
            size = tuple(int(v) for v in size)
            sample = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=padded_hw,
                                                 batch_input_shape=padded_hw, scale_factor=(1.0, 1.0)))
            if targets is not None:
                sample.gt_instances = InstanceData(bboxes=targets[i]["boxes"].float(),
                                                   labels=targets[i]["labels"].long() - 1)  # mmdet counts from 0
            samples.append(sample)
        return samples

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        original_sizes = [tuple(int(v) for v in image.shape[-2:]) for image in images]
        boxes = None if targets is None else [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        image_list, resized = self.transform(list(images), boxes)
        padded_hw = tuple(int(v) for v in image_list.tensors.shape[-2:])
        if self.training:
            if resized is None:
                raise ValueError("an mmdet detector in training mode needs targets")
            samples = self._samples(image_list.image_sizes, padded_hw, resized)
            return task_losses(self.core.loss(image_list.tensors, samples))
        samples = self._samples(image_list.image_sizes, padded_hw)
        results = self.core.predict(image_list.tensors, samples, rescale=False)
        detections = [{"boxes": r.pred_instances.bboxes, "scores": r.pred_instances.scores,
                       "labels": r.pred_instances.labels + 1} for r in results]
        return self.transform.postprocess(detections, image_list.image_sizes, original_sizes)

    def dense_outputs(self, images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The dense head's outputs over all anchors (:func:`dense_layout`), without decoding or NMS."""
        image_list, _ = self.transform(list(images))
        outputs = self.dense_head(self.core.extract_feat(image_list.tensors))
        return dense_layout(outputs[0], outputs[1], self.dense_head.num_base_priors)
