import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.protocol import get_protocol
from bench.registry import DATASETS, TASKS


def macs(model):
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 64, 48))
    return counter.get_total_flops() / 2


def small_split():
    return DATASETS.get("figures")(train_images=4, val_images=1, test_images=2, seed=3)["train"]


def test_hflip_mirrors_keypoints_and_swaps_sides():
    task = TASKS.get("pose")()
    split = small_split()
    batch = task.collate(split, torch.tensor([0, 0]), torch.tensor([0, 1]), "hflip")
    plain, flipped = batch.targets["keypoints"]
    torch.testing.assert_close(batch.inputs[1], batch.inputs[0].flip(-1))
    for left, right in split.extra["flip_pairs"]:
        if plain[left, 2] > 0:
            assert flipped[right, 0] == pytest.approx(48 - plain[left, 0].item())
            assert flipped[right, 1] == plain[left, 1] and flipped[right, 2] == plain[left, 2]
    assert torch.equal(flipped[:, 2].sort().values, plain[:, 2].sort().values)


def test_batches_carry_heatmaps_at_stride_4():
    task = TASKS.get("pose")()
    batch = task.collate(small_split(), torch.tensor([0, 1]), torch.tensor([0, 0]), "hflip")
    assert batch.targets["heatmaps"].shape == (2, 14, 16, 12)
    assert batch.targets["weights"].shape == (2, 14)


@pytest.mark.parametrize("protocol_name", ["pose-smoke", "pose-mini"])
def test_student_is_at_least_4x_cheaper(protocol_name):
    protocol = get_protocol(protocol_name)
    task = TASKS.get("pose")()
    assert macs(task.build_model(protocol.teacher.model, 14)) >= 4 * macs(task.build_model(protocol.student, 14))


def test_perfect_heatmaps_score_full_marks():
    task = TASKS.get("pose")()
    split = DATASETS.get("figures")(train_images=2, val_images=1, test_images=6, seed=3)["test"]

    class Oracle(torch.nn.Module):
        """Returns the encoded ground truth of the split, in order."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            batch = task.collate(split, torch.arange(len(split)), torch.zeros(len(split), dtype=torch.long), "none")
            self.maps = batch.targets["heatmaps"]
            self.calls = 0

        def forward(self, x):
            out = self.maps[self.calls : self.calls + len(x)] + self.w
            self.calls += len(x)
            return out

    metrics = task.evaluate(Oracle(), split, batch_size=3)
    # labelled keypoints on the crop's very edge fall outside the heatmap grid and are not encoded
    assert metrics["pck"] > 95.0 and metrics["ap"] > 90.0
