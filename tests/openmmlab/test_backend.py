"""The OpenMMLab backend in the OpenMMLab environment (``bash tools/install-openmmlab.sh``): mmdet detectors
and mmseg segmentors behind the detection and segmentation tasks.

Run: ``.venv-openmmlab/bin/python -m pytest tests/openmmlab tests/contract -k "mmdet or mmseg"`` (or
``tox -e openmmlab``); the contract tests then cover every applicable method on this backend's smoke
protocols. In the default environment this module is skipped.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

pytest.importorskip("mmdet", reason="the OpenMMLab environment is not installed (bash tools/install-openmmlab.sh)")
pytest.importorskip("mmseg", reason="the OpenMMLab environment is not installed (bash tools/install-openmmlab.sh)")

from bench.cli import main  # noqa: E402
from bench.distill import FeatureRecorder  # noqa: E402
from bench.engine import seed_everything  # noqa: E402
from bench.protocol import get_protocol  # noqa: E402
from bench.registry import MODELS  # noqa: E402
from bench.results import ResultsStore  # noqa: E402
from bench.task import make_task  # noqa: E402

DETECTORS = ("mmdet_retinanet_r18w8", "mmdet_faster_rcnn_r18w8")
SEGMENTORS = ("mmseg_pspnet_r18w8", "mmseg_deeplabv3_r18w8")


@pytest.fixture(scope="module")
def detection():
    protocol = get_protocol("detection-mmdet-retinanet-smoke")
    task = make_task(protocol)
    return task, task.load_splits(protocol.dataset)


def batch_of(task, split, size=4):
    generator = torch.Generator().manual_seed(0)
    return next(task.train_batches(split, size, "hflip", generator))


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_trains_with_the_tasks_loss_terms_and_detects_in_image_pixels(detection, name):
    task, splits = detection
    seed_everything(0)
    model = task.build_model(name, len(splits["train"].classes))
    batch = batch_of(task, splits["train"])
    _, losses = task.forward_train(model, batch)
    assert {"classification", "bbox_regression"} <= set(losses)
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.core.backbone.parameters())
    model.eval()
    with torch.no_grad():
        detections = model([task.prepare(image) for image in splits["test"].inputs[:3]])
    for found in detections:
        assert set(found) == {"boxes", "scores", "labels"}
        if len(found["labels"]):
            assert 1 <= int(found["labels"].min()) and int(found["labels"].max()) <= len(splits["train"].classes)
            assert float(found["boxes"].min()) >= 0 and float(found["boxes"].max()) <= 64
    metrics = task.evaluate(model, splits["test"], 16)
    assert set(task.metrics) <= set(metrics)


@pytest.mark.parametrize("name", DETECTORS)
def test_head_out_pairs_each_score_with_the_tasks_anchor(detection, name):
    """The tapped ``head.out`` is laid out like the task's anchors: the highest-scoring entry, decoded at the
    task's anchor with the head's own box coder, is the box mmdet's own post-processing keeps first."""
    from mmengine.config import ConfigDict

    task, splits = detection
    configured = make_task(dataclasses.replace(get_protocol("detection-mmdet-retinanet-smoke"), student=name))
    seed_everything(0)
    model = configured.build_model(name, len(splits["train"].classes)).eval()
    images = [task.prepare(image) for image in splits["test"].inputs[:2]]
    points = configured.feature_points(name)
    recorder = FeatureRecorder(model, points)
    with torch.no_grad():
        dense, features = recorder.record(lambda: model.dense_outputs(images))
    frame_hw = tuple(features["neck.p2"].shape[-2:])
    frame_hw = (frame_hw[0] * 4, frame_hw[1] * 4)
    anchors = configured.anchors_all(frame_hw)
    assert dense["cls_logits"].shape[1] == anchors.shape[0] == features["head.out"]["bbox_regression"].shape[1]
    head = model.dense_head
    image_list, _ = model.transform(images)
    with torch.no_grad():
        cls_scores, bbox_preds = head(model.core.extract_feat(image_list.tensors))[:2]
    metas = [dict(img_shape=tuple(size), pad_shape=frame_hw, batch_input_shape=frame_hw, scale_factor=(1.0, 1.0))
             for size in image_list.image_sizes]
    cfg = ConfigDict(nms_pre=100000, min_bbox_size=-1, score_thr=0.0, nms=dict(type="nms", iou_threshold=1.0),
                     max_per_img=1)
    kept = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, cfg=cfg, rescale=False)
    for i, result in enumerate(kept):
        scores = dense["cls_logits"][i]
        best = int(scores.max(dim=1).values.argmax())
        box = head.bbox_coder.decode(anchors[best][None], dense["bbox_regression"][i][best][None],
                                     max_shape=tuple(image_list.image_sizes[i]))
        assert torch.allclose(box, result.bboxes[:1], atol=1e-4)


@pytest.mark.parametrize("name", SEGMENTORS)
def test_segmentor_gives_full_size_logits_and_its_points(name):
    protocol = get_protocol("segmentation-mmseg-pspnet-smoke")
    task = make_task(protocol)
    seed_everything(0)
    model = task.build_model(name, 9)
    recorder = FeatureRecorder(model, task.feature_points(name))
    inputs = torch.randn(2, 3, 64, 64)
    logits, features = recorder.record(lambda: model(inputs))
    assert logits.shape == (2, 9, 64, 64)
    assert features["logits.low"].shape == (2, 9, 8, 8)
    assert features["psp.out"].shape == (2, 32, 8, 8) and features["embedding"] is features["psp.out"]
    assert features["backbone.out"].shape == (2, 64, 8, 8)
    assert torch.equal(model.scale.flatten(), torch.ones(3)) and torch.equal(model.shift.flatten(), torch.zeros(3))


def test_cityscapes_segmentor_renormalises_to_imagenet_statistics(monkeypatch, tmp_path):
    from tasks.openmmlab.models import OpenMMLabModel

    model = OpenMMLabModel("mmseg", "pspnet_r18_d8_tiny", {"model.backbone.base_channels": 8},
                           )  # the tiny model with the Cityscapes config's normalisation
    monkeypatch.setattr(OpenMMLabModel, "settings",
                        lambda self: {"normalization": {"mean": [123.675, 116.28, 103.53],
                                                        "std": [58.395, 57.12, 57.375]}})
    built = model(num_classes=3)
    u = torch.rand(1, 3, 4, 4) * 255
    x_task = (u / 255 - 0.5) / 0.25
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    assert torch.allclose(x_task * built.scale + built.shift, (u - mean) / std, atol=1e-4)


def test_auxiliary_head_adds_its_weighted_ce():
    from tasks.openmmlab.models import OpenMMLabModel

    auxiliary = dict(type="FCNHead", in_channels=64, in_index=2, channels=16, num_convs=1, concat_input=False,
                     dropout_ratio=0.1, num_classes=9, norm_cfg=dict(type="BN", requires_grad=True),
                     align_corners=False, loss_decode=dict(type="CrossEntropyLoss", loss_weight=0.4))
    factory = OpenMMLabModel("mmseg", "pspnet_r18_d8_tiny", {"model.auxiliary_head": auxiliary})
    protocol = get_protocol("segmentation-mmseg-pspnet-smoke")
    task = make_task(protocol)
    splits = task.load_splits(protocol.dataset)
    seed_everything(0)
    model = factory(num_classes=9)
    batch = batch_of(task, splits["train"])
    _, losses = task.forward_train(model, batch)
    assert set(losses) == {"ce", "ce_aux"}
    [(aux_logits, weight)] = model.auxiliary_logits()
    assert weight == 0.4
    expected = 0.4 * torch.nn.functional.cross_entropy(aux_logits, batch.targets, ignore_index=255)
    assert torch.allclose(losses["ce_aux"], expected)
    model.eval()
    model(batch.inputs)
    assert model.auxiliary_logits() == []  # evaluation runs the decode head only


def test_pretrained_backbone_is_read_weights_only_and_zoo_files_load_as_teachers(tmp_path):
    from tasks.openmmlab.models import OpenMMLabModel

    seed_everything(1)
    source = MODELS.get("mmseg_pspnet_r18w8")(num_classes=9)
    torch.save({"meta": {"note": "an mmengine-style file"}, "state_dict": source.core.backbone.state_dict()},
               tmp_path / "backbone.pth")
    factory = OpenMMLabModel("mmseg", "pspnet_r18_d8_tiny", {
        "model.backbone.base_channels": 8, "model.backbone.stem_channels": 8, "model.decode_head.in_channels": 64,
        "model.decode_head.channels": 32,
        "model.backbone.init_cfg": dict(_delete_=True, type="Pretrained", checkpoint=str(tmp_path / "backbone.pth"))})
    seed_everything(2)
    built = factory(num_classes=9)
    for key, value in source.core.backbone.state_dict().items():
        assert torch.equal(built.core.backbone.state_dict()[key], value), key
    assert not torch.equal(built.core.decode_head.conv_seg.weight, source.core.decode_head.conv_seg.weight)
    zoo_style = {key.removeprefix("core."): value for key, value in source.state_dict().items()}
    built.load_state_dict(zoo_style)  # a model-zoo file names its tensors without the wrapper's "core."
    assert torch.equal(built.core.decode_head.conv_seg.weight, source.core.decode_head.conv_seg.weight)


@pytest.mark.parametrize("protocol,method", [("detection-mmdet-faster-rcnn-smoke", "fgfi"),
                                             ("segmentation-mmseg-pspnet-smoke", "cwd")])
def test_kdbench_run_writes_a_record_on_openmmlab_models(tmp_path, protocol, method):
    results = tmp_path / "results"
    assert main(["run", "--protocol", protocol, "--method", method, "--seeds", "0", "--results", str(results),
                 "--quiet"]) == 0
    [record] = ResultsStore(results).records()
    metric = get_protocol(protocol).primary_metric
    assert record["protocol"]["name"] == protocol and 0.0 <= record["metrics"][metric] <= 100.0


@pytest.mark.parametrize("name", [*DETECTORS, *SEGMENTORS])
def test_a_saved_model_loads_back_strictly_with_each_tensor_named_once(name, tmp_path):
    """What the teacher cache does: save the state dict, build the model anew, load it strictly."""
    task = make_task(get_protocol("detection-mmdet-retinanet-smoke" if name.startswith("mmdet")
                                  else "segmentation-mmseg-pspnet-smoke"))
    seed_everything(0)
    model = task.build_model(name, 6)
    state = model.state_dict()
    assert all(key.startswith("core.") for key in state)
    torch.save(state, tmp_path / "model.pt")
    seed_everything(1)
    fresh = task.build_model(name, 6)
    fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())
