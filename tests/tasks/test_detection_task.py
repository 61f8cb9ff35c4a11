import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.protocol import get_protocol
from bench.registry import DATASETS, TASKS


def macs(model):
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model([torch.zeros(3, 64, 64)])
    return counter.get_total_flops() / 2


def small_scenes():
    return DATASETS.get("scenes")(train_images=6, val_images=2, test_images=3, seed=5)


def test_scenes_splits_carry_coco_ground_truth():
    splits = small_scenes()
    assert [len(splits[s]) for s in ("train", "val", "test")] == [6, 2, 3]
    test = splits["test"]
    gt_ids = {image["id"] for image in test.extra["coco"]["images"]}
    assert gt_ids == {t["image_id"] for t in test.targets}
    n_boxes = sum(len(t["boxes"]) for t in test.targets)
    assert n_boxes == len(test.extra["coco"]["annotations"])


def test_hflip_flips_images_and_boxes():
    task = TASKS.get("detection")()
    split = small_scenes()["train"]
    idx = torch.tensor([0, 0])
    batch = task.collate(split, idx, torch.tensor([0, 1]), "hflip")
    plain, flipped = batch.inputs
    assert torch.equal(flipped, plain.flip(-1))
    boxes, flipped_boxes = batch.targets[0]["boxes"], batch.targets[1]["boxes"]
    torch.testing.assert_close(flipped_boxes[:, 0], 64 - boxes[:, 2])
    torch.testing.assert_close(flipped_boxes[:, 2], 64 - boxes[:, 0])
    torch.testing.assert_close(flipped_boxes[:, 1::2], boxes[:, 1::2])


@pytest.mark.parametrize("protocol_name", ["detection-smoke", "detection-mini"])
def test_student_is_at_least_4x_cheaper(protocol_name):
    protocol = get_protocol(protocol_name)
    task = TASKS.get("detection")()
    assert macs(task.build_model(protocol.teacher.model, 6)) >= 4 * macs(task.build_model(protocol.student, 6))


def test_feature_points_have_their_strides():
    task = TASKS.get("detection")()
    model = task.build_model("retinanet_fpn_6", 6).eval()
    seen = {}
    for point in ("neck.p2", "neck.p3", "neck.p4"):
        module = model.get_submodule(task.module_path("retinanet_fpn_6", point))
        module.register_forward_hook(lambda m, i, o, p=point: seen.__setitem__(p, o.shape))
    with torch.no_grad():
        model([torch.zeros(3, 64, 64)])
    assert seen == {"neck.p2": (1, 12, 16, 16), "neck.p3": (1, 12, 8, 8), "neck.p4": (1, 12, 4, 4)}
