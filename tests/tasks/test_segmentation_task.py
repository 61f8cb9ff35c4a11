import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.errors import ConfigError
from bench.protocol import get_protocol
from bench.registry import DATASETS, TASKS
from bench.task import Split


def macs(model):
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 64, 64))
    return counter.get_total_flops() / 2


def test_hflip_flips_images_and_label_maps_together():
    task = TASKS.get("segmentation")()
    split = DATASETS.get("seg_scenes")(train_images=3, val_images=1, test_images=1, seed=4)["train"]
    batch = task.collate(split, torch.tensor([1, 1]), torch.tensor([0, 1]), "hflip")
    torch.testing.assert_close(batch.inputs[1], batch.inputs[0].flip(-1))
    assert torch.equal(batch.targets[1], batch.targets[0].flip(-1)) and batch.targets.dtype == torch.long


@pytest.mark.parametrize("protocol_name", ["segmentation-smoke", "segmentation-mini"])
def test_student_is_at_least_4x_cheaper(protocol_name):
    protocol = get_protocol(protocol_name)
    task = TASKS.get("segmentation")()
    assert macs(task.build_model(protocol.teacher.model, 9)) >= 4 * macs(task.build_model(protocol.student, 9))


def test_feature_points_resolve():
    task = TASKS.get("segmentation")()
    model = task.build_model("pspnet_6", 9).eval()
    shapes = {}
    for point in ("psp.out", "logits.low", "backbone.out"):
        module = model.get_submodule(task.module_path("pspnet_6", point))
        module.register_forward_hook(lambda m, i, o, p=point: shapes.__setitem__(p, tuple(o.shape)))
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 9, 64, 64)
    assert shapes == {"psp.out": (1, 24, 8, 8), "logits.low": (1, 9, 8, 8), "backbone.out": (1, 48, 8, 8)}


def test_evaluate_reports_dataset_level_miou_and_per_class_iou():
    task = TASKS.get("segmentation")()
    targets = torch.tensor([[[0, 0], [1, 255]]], dtype=torch.uint8).repeat(2, 1, 1)

    class Constant(torch.nn.Module):
        """Predicts class 0 everywhere."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            logits = torch.zeros(x.shape[0], 2, 2, 2)
            logits[:, 0] = 1.0
            return logits + self.w

    metrics = task.evaluate(Constant(), Split(torch.zeros(2, 3, 2, 2, dtype=torch.uint8), targets, ("a", "b")), 1)
    # class a: TP 4, FP 2 (the two b pixels), FN 0 -> IoU 4/6; class b: IoU 0; ignore pixels left out
    assert metrics["iou_a"] == pytest.approx(100 * 4 / 6) and metrics["iou_b"] == 0.0
    assert metrics["miou"] == pytest.approx(100 * 2 / 6) and metrics["pixel_acc"] == pytest.approx(100 * 4 / 6)


def test_real_datasets_need_a_root():
    with pytest.raises(ConfigError, match="--data-root"):
        DATASETS.get("cityscapes")()


def test_deeplabv3_feature_points_resolve():
    task = TASKS.get("segmentation")()
    model = task.build_model("deeplabv3_6", 9).eval()
    shapes = {}
    for point in ("psp.out", "logits.low", "backbone.out"):
        module = model.get_submodule(task.module_path("deeplabv3_6", point))
        module.register_forward_hook(lambda m, i, o, p=point: shapes.__setitem__(p, tuple(o.shape)))
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 9, 64, 64)
    assert shapes == {"psp.out": (1, 24, 8, 8), "logits.low": (1, 9, 8, 8), "backbone.out": (1, 48, 8, 8)}
