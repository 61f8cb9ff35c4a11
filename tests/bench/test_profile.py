"""The MAC counter against hand-computed counts and published counts; bad input sizes."""

import pytest
import timm
import torch
from torch import nn

from bench.errors import ConfigError
from bench.profile import check_input_size, count_macs, count_params, profile_model


def test_convolution_by_hand():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=True)
    # every output value (8 channels x 10 x 10) is a 3x3x3 dot product; the bias add is not a MAC
    assert count_macs(conv, (3, 10, 10)) == (8 * 10 * 10 * 3 * 3 * 3, 2 * 8 * 10 * 10 * 27)


def test_strided_grouped_convolution_by_hand():
    conv = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1, groups=4, bias=False)
    macs, _ = count_macs(conv, (8, 12, 12))
    assert macs == 16 * 6 * 6 * (8 // 4) * 9


def test_linear_by_hand():
    assert count_macs(nn.Linear(20, 30), (20,)) == (600, 1200)


class MatMul(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(5, 6))

    def forward(self, x):
        return x @ self.weight


def test_matmul_by_hand():
    # batch 1 x (4 x 5) @ (5 x 6): 4 * 6 outputs of 5 multiply-adds each
    assert count_macs(MatMul(), (4, 5))[0] == 4 * 6 * 5


def test_elementwise_work_is_not_counted():
    assert count_macs(nn.Sequential(nn.BatchNorm2d(3), nn.ReLU()), (3, 8, 8)) == (0, 0)


@pytest.mark.parametrize("name,published_gmacs", [
    ("resnet18", 1.82), ("resnet50", 4.11), ("mobilenetv3_large_100", 0.22),
])
def test_published_counts_at_224(name, published_gmacs):
    # timm's model cards: resnet18 1.8 GMACs (1.82), resnet50 4.1 (4.11), mobilenetv3_large_100 0.2 (0.22)
    model = timm.create_model(name, pretrained=False).eval()
    macs, _ = count_macs(model, (3, 224, 224))
    assert macs / 1e9 == pytest.approx(published_gmacs, rel=0.02)


def test_params_are_counted():
    assert count_params(nn.Linear(20, 30)) == 20 * 30 + 30
    assert count_params(None) == 0


def test_input_size_the_model_cannot_take_is_named():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 2))
    check_input_size(model, "tiny", (3, 32, 32))
    with pytest.raises(ConfigError, match=r"'tiny' cannot take input size 3x28x28"):
        check_input_size(model, "tiny", (3, 28, 28))
    with pytest.raises(ConfigError, match="not a positive shape"):
        check_input_size(model, "tiny", (3, 0, 32))


def test_bad_size_is_rejected_before_any_timing(monkeypatch):
    import bench.profile

    def no_timing(*args, **kwargs):
        raise AssertionError("timed before checking the input size")

    monkeypatch.setattr(bench.profile, "_timed_calls", no_timing)
    with pytest.raises(ConfigError, match="cannot take input size"):
        profile_model(nn.Linear(10, 2), "lin", (3, 32, 32), batch_size=4)


def test_profile_reports_named_units():
    profile = profile_model(nn.Linear(10, 2), "lin", (10,), batch_size=4, min_repeats=5, min_seconds=0.0,
                            warmup=1).to_dict()
    assert profile["macs"] == 20 and profile["flops"] == 40 and profile["gmacs"] == 20 / 1e9
    assert profile["latency_ms"] > 0 and profile["latency_iqr_ms"] >= 0 and profile["latency_repeats"] >= 5
    assert profile["throughput_per_s"] > 0 and profile["throughput_batch"] == 4
    assert profile["threads"] == 1 and profile["device"] == "cpu" and profile["dtype"] == "float32"
