"""FGFI's mask and chen2017's anchor assignment live in the frame the detector sees.

The detector resizes each image (longer side to 64 pixels) and pads the batch; on real COCO the
stored image and box coordinates differ from that frame. These tests compare the task's frame,
anchors and the methods' geometry with what torchvision's RetinaNet itself computes on
non-square images of several sizes.
"""

import pytest
import torch
from torchvision.ops import box_iou

from baselines.chen2017 import Chen2017
from baselines.fgfi import FGFI, LEVELS
from bench.method import LossInputs
from bench.registry import TASKS
from tasks.detection.assign import assign
from tasks.detection.imitation import imitation_masks
from tasks.detection.models import LEVEL_STRIDES, build_retinanet

SIZES = [(96, 128), (128, 96), (50, 80)]


def batch(sizes, seed=0):
    """Random images of the given (H, W) with one box each, placed relative to the image size."""
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand(3, h, w, generator=g) for h, w in sizes]
    targets = [{"boxes": torch.tensor([[0.55 * w, 0.1 * h, 0.95 * w, 0.45 * h]]), "labels": torch.tensor([1])}
               for h, w in sizes]
    return images, targets


def model_view(model, images, targets):
    """What RetinaNet computes: padded batch, resized boxes, its anchors (one set per image)."""
    image_list, resized = model.transform(images, [dict(t) for t in targets])
    features = list(model.backbone(image_list.tensors).values())
    anchors = model.anchor_generator(image_list, features)
    return image_list, resized, anchors, features


@pytest.mark.parametrize("sizes", [[s] for s in SIZES] + [SIZES])
def test_frame_and_anchors_equal_the_detectors(sizes):
    task, model = TASKS.get("detection")(), build_retinanet(4, 3)
    images, targets = batch(sizes)
    frame_hw, boxes = task.detector_frame(images, targets)
    image_list, resized, anchors, _ = model_view(model, images, targets)
    assert frame_hw == tuple(image_list.tensors.shape[-2:])
    for ours, theirs in zip(boxes, resized, strict=True):
        torch.testing.assert_close(ours, theirs["boxes"])
    torch.testing.assert_close(task.anchors_all(frame_hw), anchors[0])
    raw_hw = tuple(images[0].shape[-2:])
    if raw_hw != frame_hw:  # the raw frame gives other anchors: what the old code used
        assert task.anchors_all(raw_hw).shape != anchors[0].shape or not torch.equal(task.anchors_all(raw_hw),
                                                                                    anchors[0])


@pytest.mark.parametrize("size", SIZES)
def test_chen2017_assigns_the_anchors_the_detector_trains(size):
    """The foreground anchors of chen2017 are RetinaNet's own matches of the resized boxes."""
    task, model = TASKS.get("detection")(), build_retinanet(4, 3)
    images, targets = batch([size])
    frame_hw, boxes = task.detector_frame(images, targets)
    _, resized, anchors, _ = model_view(model, images, targets)
    theirs = model.proposal_matcher(box_iou(resized[0]["boxes"], anchors[0])) >= 0
    ours, _, _ = assign(task.anchors_all(frame_hw), boxes[0])
    assert ours.any() and torch.equal(ours, theirs)
    stale, _, _ = assign(task.anchors_all(frame_hw), targets[0]["boxes"])  # raw boxes in the model's frame
    assert not torch.equal(stale, theirs)


@pytest.mark.parametrize("size", SIZES)
def test_chen2017_losses_run_on_resized_images(size):
    task, model = TASKS.get("detection")(), build_retinanet(4, 3)
    images, targets = batch([size, size])
    image_list, resized, _, features = model_view(model, images, targets)
    head = model.head(features)
    method = Chen2017()
    p3 = features[1]
    extras = method.build_extras({"neck.p3": p3.shape}, {"neck.p3": p3.shape})
    out = {"head.out": head, "neck.p3": p3}
    inputs = LossInputs(out, out, targets, {"classification": torch.tensor(1.0), "bbox_regression": torch.tensor(1.0)},
                        task, images)
    terms = method.losses(inputs, extras)
    assert all(torch.isfinite(v) for v in terms.values())


@pytest.mark.parametrize("size", SIZES)
def test_fgfi_mask_marks_the_cells_of_the_resized_box(size):
    """The mask equals the definition applied to the model's own anchors and resized boxes, and
    its cells lie around the box as the model sees it."""
    task, model = TASKS.get("detection")(), build_retinanet(4, 3)
    images, targets = batch([size])
    _, resized, anchors, features = model_view(model, images, targets)
    feats = dict(zip(LEVELS, features, strict=True))
    inputs = LossInputs(feats, feats, targets, {}, task, images)
    masks = FGFI().masks(inputs, feats)
    counts = [f.shape[-2] * f.shape[-1] for f in features]
    split = torch.split(anchors[0], [3 * c for c in counts])
    expected = imitation_masks([resized[0]["boxes"]], list(split), [tuple(f.shape[-2:]) for f in features],
                               [3, 3, 3])
    for level, want in zip(LEVELS, expected, strict=True):
        assert torch.equal(masks[level], want)
    x1, y1, x2, y2 = resized[0]["boxes"][0].tolist()
    marked = 0
    for level, stride in LEVEL_STRIDES.items():  # every marked cell's anchor centre is near the box
        rows, cols = masks[level][0].nonzero(as_tuple=True)
        marked += rows.numel()
        if rows.numel():
            assert rows.min() * stride >= y1 - stride and rows.max() * stride <= y2 + stride
            assert cols.min() * stride >= x1 - stride and cols.max() * stride <= x2 + stride
    assert marked > 0
