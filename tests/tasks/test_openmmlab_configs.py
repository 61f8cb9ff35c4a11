"""The OpenMMLab backend's side that needs no OpenMMLab: configs, feature points, checkpoints, protocols.

These run in the default environment (mmengine reads the configs); the models themselves are built and
trained in the OpenMMLab environment (tests/openmmlab, tests/contract there).
"""

from __future__ import annotations

import pytest
import torch

from bench.errors import ConfigError
from bench.protocol import get_protocol, protocols_of_tier
from bench.registry import MODELS, PROTOCOLS
from tasks.detection.task import DetectionTask
from tasks.openmmlab import available
from tasks.openmmlab.models import (SHIPPED, WIDTHS, OpenMMLabModel, accept_openmmlab_keys, read_config,
                                    register_config, set_num_classes, shipped_configs, take_checkpoints)
from tasks.segmentation.task import SegmentationTask


def test_every_shipped_model_reads_its_config_with_the_widths_applied():
    for prefix, backend, config, _ in SHIPPED:
        for width in WIDTHS:
            model_cfg = MODELS.get(f"{prefix}{width}").model_config(num_classes=4)
            assert model_cfg["backbone"]["base_channels"] == width
            if backend == "mmdet":
                assert model_cfg["neck"]["in_channels"] == [width, 2 * width, 4 * width]
                heads = [model_cfg.get("bbox_head") or model_cfg["roi_head"]["bbox_head"]]
            else:
                assert model_cfg["decode_head"]["in_channels"] == 8 * width
                heads = [model_cfg["decode_head"]]
            assert all(head["num_classes"] == 4 for head in heads), config
    assert set(shipped_configs()) >= {config for _, _, config, _ in SHIPPED}


def test_num_classes_is_set_on_every_classifying_head_but_the_rpn():
    model_cfg = MODELS.get("mmdet_faster_rcnn_r50_fpn_coco").model_config(num_classes=7)
    assert model_cfg["roi_head"]["bbox_head"]["num_classes"] == 7
    assert "num_classes" not in model_cfg["rpn_head"]
    seg = {"decode_head": {"num_classes": 19}, "auxiliary_head": [{"num_classes": 19}, {"num_classes": 19}]}
    set_num_classes(seg, 3)
    assert seg == {"decode_head": {"num_classes": 3}, "auxiliary_head": [{"num_classes": 3}, {"num_classes": 3}]}


def test_feature_points_map_onto_the_wrappers_taps_and_modules():
    detection, segmentation = DetectionTask(), SegmentationTask()
    assert detection.feature_points("mmdet_retinanet_r18w8") == {
        "neck.p2": "taps.neck_p2", "neck.p3": "taps.neck_p3", "neck.p4": "taps.neck_p4", "head.out": "taps.head_out"}
    assert set(detection.feature_points("mmdet_faster_rcnn_r50_fpn_coco")) == {
        "neck.p2", "neck.p3", "neck.p4", "neck.p5", "neck.p6", "head.out"}
    assert segmentation.feature_points("mmseg_pspnet_r18w8") == {
        "logits.low": "core.decode_head.conv_seg", "psp.out": "core.decode_head.bottleneck",
        "embedding": "core.decode_head.bottleneck", "backbone.out": "core.backbone.layer4"}
    assert detection.feature_points("retinanet_fpn_6")["neck.p3"] == "backbone.fpn.layer_blocks.1"  # unchanged


def test_a_configured_detection_task_takes_the_mmdet_detectors_geometry():
    protocol = get_protocol("detection-smoke")
    import dataclasses

    task = DetectionTask().configure(dataclasses.replace(protocol, student="mmdet_faster_rcnn_r50_fpn_coco"))
    assert task.geometry.level_strides == {"neck.p2": 4, "neck.p3": 8, "neck.p4": 16, "neck.p5": 32, "neck.p6": 64}
    frame_hw, boxes = task.detector_frame([torch.rand(3, 400, 600)], [{"boxes": torch.tensor([[0., 0., 60., 40.]])}])
    assert frame_hw == (800, 1216)  # shorter side 400 -> 800 (longer 1200 <= 1333), padded to 32
    assert torch.allclose(boxes[0], torch.tensor([[0., 0., 120., 80.]]))
    assert DetectionTask().configure(protocol).geometry.level_strides == {"neck.p2": 4, "neck.p3": 8, "neck.p4": 16}


def test_remote_and_missing_checkpoints_are_refused_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("KDBENCH_CHECKPOINTS", raising=False)
    remote = {"backbone": {"init_cfg": {"type": "Pretrained", "checkpoint": "open-mmlab://resnet18_v1c"}}}
    with pytest.raises(ConfigError, match=r"model\.backbone\.init_cfg\.checkpoint .*never downloads"):
        take_checkpoints(remote)
    with pytest.raises(ConfigError, match=r"model\.backbone\.init_cfg\.checkpoint: checkpoint file r18\.pth not "
                                          r"found.*KDBENCH_CHECKPOINTS"):
        take_checkpoints({"backbone": {"init_cfg": {"type": "Pretrained", "checkpoint": "r18.pth"}}})
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "r18.pth")
    monkeypatch.setenv("KDBENCH_CHECKPOINTS", str(tmp_path))
    model_cfg = {"backbone": {"init_cfg": {"type": "Pretrained", "checkpoint": "r18.pth", "prefix": "backbone."}},
                 "init_cfg": [{"type": "Normal", "std": 0.01}]}
    [found] = take_checkpoints(model_cfg)
    assert (found.key, found.module, found.path, found.prefix) == (
        "model.backbone.init_cfg.checkpoint", "backbone", tmp_path / "r18.pth", "backbone.")
    assert model_cfg == {"backbone": {"init_cfg": None}, "init_cfg": [{"type": "Normal", "std": 0.01}]}


def test_a_users_config_registers_and_a_missing_one_lists_the_shipped(tmp_path):
    path = tmp_path / "my_pspnet.py"
    path.write_text("model = dict(type='EncoderDecoder', decode_head=dict(type='PSPHead', num_classes=19))\n")
    model = register_config("test_users_pspnet", "mmseg", path)
    try:
        assert model.model_config(5)["decode_head"]["num_classes"] == 5
        assert SegmentationTask().feature_points("test_users_pspnet")["logits.low"] == "core.decode_head.conv_seg"
    finally:
        MODELS._registry._module_dict.pop("test_users_pspnet")
        MODELS._sources.pop("test_users_pspnet", None)
    with pytest.raises(ConfigError, match="no such file.*shipped: .*pspnet_r18_d8_tiny"):
        read_config(tmp_path / "absent.py")
    (tmp_path / "broken.py").write_text("model = dict(\n")
    with pytest.raises(ConfigError, match="broken.py: cannot be read"):
        read_config(tmp_path / "broken.py")
    with pytest.raises(ConfigError, match="backend 'mmpose'; valid: mmdet, mmseg"):
        OpenMMLabModel("mmpose", "x")


@pytest.mark.skipif(available("mmdet") and available("mmseg"), reason="OpenMMLab is installed here")
def test_without_openmmlab_building_says_how_to_install_and_no_smoke_protocol_is_registered():
    with pytest.raises(ConfigError, match="tools/install-openmmlab.sh"):
        MODELS.get("mmseg_pspnet_r18w8")(num_classes=3)
    assert not [name for name in PROTOCOLS.names() if "mmdet" in name or "mmseg" in name]


def test_model_zoo_checkpoint_keys_are_renamed_under_core():
    wrapper = torch.nn.Module()
    wrapper.core, wrapper.taps = torch.nn.Identity(), torch.nn.Identity()
    state = {"backbone.conv1.weight": 1, "core.decode_head.conv_seg.bias": 2, "taps.x": 3}
    accept_openmmlab_keys(wrapper, state, "")
    assert state == {"core.backbone.conv1.weight": 1, "core.decode_head.conv_seg.bias": 2, "taps.x": 3}
    nested = {"student.backbone.x": 1, "other.y": 2}
    accept_openmmlab_keys(wrapper, nested, "student.")
    assert nested == {"student.core.backbone.x": 1, "other.y": 2}


def test_the_full_tier_protocols_read_their_files_and_carry_claims():
    from bench.claims import claims_for

    coco, cityscapes = get_protocol("coco-faster-rcnn-r101-r50"), get_protocol("cityscapes-pspnet-r101-r18")
    assert (coco.tier, coco.task, coco.student, coco.teacher.model) == (
        "full", "detection", "mmdet_faster_rcnn_r50_fpn_coco", "mmdet_faster_rcnn_r101_fpn_coco")
    assert coco.teacher_file == "faster_rcnn_r101_fpn_1x_coco_20200130-f513f705.pth"
    assert (coco.schedule.epochs, coco.schedule.lr, coco.schedule.milestones) == (12, 0.02, (8, 11))
    assert (cityscapes.schedule.lr_schedule, cityscapes.schedule.epochs, cityscapes.schedule.batch_size) == (
        "poly", 215, 8)
    assert cityscapes.method_overrides["cwd"] == {"tau": 1.0, "weight": 5.0}
    values = {c.label: c.value for c in claims_for("cityscapes-pspnet-r101-r18")}
    assert (values["teacher"], values["student"], values["CWD"]) == (79.76, 74.87, 75.54)
    assert values["SKD pixel + pair-wise + holistic"] == 74.08
    coco_claims = {c.label: c for c in claims_for("coco-faster-rcnn-r101-r50")}
    assert (coco_claims["teacher"].value, coco_claims["student"].value, coco_claims["FGFI"].value) == (39.4, 37.4, None)
    assert {p.name for p in protocols_of_tier("full")} >= {"coco-faster-rcnn-r101-r50", "cityscapes-pspnet-r101-r18"}


@pytest.mark.skipif(available("mmdet") and available("mmseg"), reason="OpenMMLab is installed here")
def test_the_full_plan_skips_openmmlab_protocols_saying_why_without_openmmlab(tmp_path):
    from bench.full_tier import plan_full

    protocols = [get_protocol("coco-faster-rcnn-r101-r50"), get_protocol("cityscapes-pspnet-r101-r18")]
    planned, skipped = plan_full(protocols, str(tmp_path), str(tmp_path))
    assert not planned
    assert [s.reason.split(":")[0] for s in skipped] == [
        "its model mmdet_faster_rcnn_r50_fpn_coco cannot be built here",
        "its model mmseg_pspnet_r18_d8_cityscapes cannot be built here"]
    assert all("tools/install-openmmlab.sh" in s.reason for s in skipped)
