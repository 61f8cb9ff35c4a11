"""Where a detector looks: the frame it sees (images resized, batch padded) and its anchors per level.

Methods that compare ground truth with anchors or feature cells (FGFI's mask, ``chen2017``'s anchor
assignment) read these through the task (:meth:`tasks.detection.task.DetectionTask.detector_frame`,
``anchors_at``, ``anchors_all``), which holds the geometry of its protocol's detector: this module's
:class:`RetinaNetGeometry` for the torch-native ``retinanet_fpn_<w>``, or an OpenMMLab detector's own
(:class:`tasks.openmmlab.detector.MMDetGeometry`). Both resize and pad with the same torchvision
transform, so the frame is computed one way for both backends.
"""

from __future__ import annotations

import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from bench.errors import ConfigError


class DetectorGeometry:
    """The frame and anchors of one detector architecture. Subclasses give :meth:`frame_transform`,
    :meth:`anchors_at` and ``level_strides`` (feature point -> stride of each anchored level, in the order of
    the head's outputs)."""

    level_strides: dict[str, int] = {}

    def frame_transform(self) -> GeneralizedRCNNTransform:
        raise NotImplementedError

    def anchors_at(self, point: str, feature_hw: tuple[int, int], image_hw: tuple[int, int]) -> torch.Tensor:
        """The anchors (xyxy, location-major, a location's anchors adjacent) at feature point ``point``."""
        raise NotImplementedError

    def check_point(self, point: str) -> None:
        if point not in self.level_strides:
            raise ConfigError(f"no anchors at {point!r}; anchored points: {', '.join(self.level_strides)}")

    def frame(self, images: list[torch.Tensor], targets: list[dict]) -> tuple[tuple[int, int], list[torch.Tensor]]:
        """``((H, W) of the padded batch, each image's boxes in it)``: the frame the detector sees."""
        with torch.no_grad():
            image_list, resized = self.frame_transform()(list(images), [{"boxes": t["boxes"]} for t in targets])
        return tuple(int(v) for v in image_list.tensors.shape[-2:]), [t["boxes"] for t in resized]

    def anchors_all(self, image_hw: tuple[int, int]) -> torch.Tensor:
        """Every anchor of one image in the order of the head's outputs (level after level)."""
        return torch.cat([
            self.anchors_at(point, (-(-image_hw[0] // stride), -(-image_hw[1] // stride)), image_hw)
            for point, stride in self.level_strides.items()
        ])


class RetinaNetGeometry(DetectorGeometry):
    """The torch-native ``retinanet_fpn_<w>`` (:mod:`tasks.detection.models`)."""

    def __init__(self) -> None:
        from tasks.detection.models import LEVEL_STRIDES

        self.level_strides = dict(LEVEL_STRIDES)

    def frame_transform(self) -> GeneralizedRCNNTransform:
        from tasks.detection.models import detector_transform

        return detector_transform()

    def anchors_at(self, point: str, feature_hw: tuple[int, int], image_hw: tuple[int, int]) -> torch.Tensor:
        from tasks.detection.models import anchor_generator

        self.check_point(point)
        level = list(self.level_strides).index(point)
        generator = anchor_generator()
        stride_h, stride_w = image_hw[0] // feature_hw[0], image_hw[1] // feature_hw[1]  # as torchvision does
        cell = generator.generate_anchors(generator.sizes[level], generator.aspect_ratios[level])
        shifts_x = torch.arange(feature_hw[1], dtype=torch.float32) * stride_w
        shifts_y = torch.arange(feature_hw[0], dtype=torch.float32) * stride_h
        sy, sx = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shifts = torch.stack([sx.reshape(-1), sy.reshape(-1)] * 2, dim=1)
        return (shifts[:, None, :] + cell[None, :, :]).reshape(-1, 4)
