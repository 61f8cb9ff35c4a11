"""RetinaNet detectors with a small FPN backbone, built from scratch (no pretrained weights).

``retinanet_fpn_<w>``: a residual-free conv backbone of four stride-2 stages at
widths (w, 2w, 4w, 8w), a torchvision ``FeaturePyramidNetwork`` on the last
three (strides 4, 8, 16: fine enough for 5-pixel objects in 64x64 images) with
``2w`` output channels, and torchvision's
``RetinaNet`` head and losses (focal loss, smooth-L1/GIoU box regression).
Anchors: one size per level (``ANCHOR_SIZES``) times three aspect ratios.
The input transform (:func:`detector_transform`) resizes every image so that its
longer side is 64 pixels (the generated 64x64 scenes are left as they are;
real COCO images are shrunk) and pads the batch to a multiple of 32, so the
frame the detector sees can differ from the stored image's.

Feature points: ``neck.p2`` / ``neck.p3`` / ``neck.p4`` are the FPN outputs at
strides 4 / 8 / 16 (named by the usual convention, p_k at stride 2^k; the
module that produces each), ``head.out`` the head's output
(``cls_logits`` and ``bbox_regression`` over all anchors).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from torch import nn
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork

from bench.registry import register_widths

ANCHOR_SIZES = ((8,), (16,), (32,))
ASPECT_RATIOS = ((0.5, 1.0, 2.0),) * 3
LEVEL_STRIDES = {"neck.p2": 4, "neck.p3": 8, "neck.p4": 16}
FEATURE_POINTS = {
    "neck.p2": "backbone.fpn.layer_blocks.0",
    "neck.p3": "backbone.fpn.layer_blocks.1",
    "neck.p4": "backbone.fpn.layer_blocks.2",
}
IMAGE_SIZE = 64
PIXEL_MEAN, PIXEL_STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class PyramidBackbone(nn.Module):
    """Four stride-2 stages and an FPN over the last three; ``out_channels`` as torchvision expects."""

    def __init__(self, width: int):
        super().__init__()
        self.stem = _stage(3, width)
        self.c3 = _stage(width, 2 * width)
        self.c4 = _stage(2 * width, 4 * width)
        self.c5 = _stage(4 * width, 8 * width)
        self.out_channels = 2 * width
        self.fpn = FeaturePyramidNetwork([2 * width, 4 * width, 8 * width], self.out_channels)

    def forward(self, x):
        c3 = self.c3(self.stem(x))
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        return self.fpn(OrderedDict([("p2", c3), ("p3", c4), ("p4", c5)]))


def anchor_generator() -> AnchorGenerator:
    return AnchorGenerator(ANCHOR_SIZES, ASPECT_RATIOS)


def detector_transform(image_size: int = IMAGE_SIZE) -> GeneralizedRCNNTransform:
    """The detector's input transform: each image resized so its longer side is ``image_size``
    (a square image of that size is left as is), normalised, and the batch zero-padded at the
    bottom and right to a multiple of 32. Every detector of this module uses exactly this one, so
    :meth:`tasks.detection.task.DetectionTask.detector_frame` can reproduce the frame it sees."""
    return GeneralizedRCNNTransform(min_size=image_size, max_size=image_size, image_mean=list(PIXEL_MEAN),
                                    image_std=list(PIXEL_STD))


def build_retinanet(width: int, num_classes: int, image_size: int = IMAGE_SIZE) -> RetinaNet:
    """RetinaNet over :class:`PyramidBackbone`; ``num_classes`` counts real classes (background implicit).

    The head normalises its convolutions with GroupNorm (4 groups), as torchvision's RetinaNet v2 does
    with 32 groups; without it, training from scratch on the CPU budget barely moved.
    """
    backbone = PyramidBackbone(width)
    anchors = anchor_generator()
    head = RetinaNetHead(backbone.out_channels, anchors.num_anchors_per_location()[0], num_classes + 1,
                         norm_layer=partial(nn.GroupNorm, 4))
    model = RetinaNet(
        backbone, num_classes=num_classes + 1, anchor_generator=anchors, head=head,
        min_size=image_size, max_size=image_size, image_mean=list(PIXEL_MEAN), image_std=list(PIXEL_STD),
        score_thresh=0.05, detections_per_img=50,
    )
    model.transform = detector_transform(image_size)  # the same settings, from the one definition
    return model


register_widths("retinanet_fpn_", build_retinanet, (4, 6, 8, 12, 16, 24),
                "RetinaNet with a PyramidBackbone of base width {width}.")
