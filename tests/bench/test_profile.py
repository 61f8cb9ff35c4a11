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


class _FakeProfile:
    """Stands in for profile_model's result: latencies in order, median 1 ms, the IQRs given."""

    def __init__(self, iqrs):
        self.iqrs, self.calls = list(iqrs), 0

    def __call__(self, *args, **kwargs):
        iqr = self.iqrs[min(self.calls, len(self.iqrs) - 1)]
        self.calls += 1
        return type("P", (), {"to_dict": lambda _: {"latency_ms": 1.0, "latency_iqr_ms": iqr, "call": self.calls}})()


@pytest.fixture
def load(monkeypatch):
    """Set the machine's load per core: ``load(2.0)``."""
    import bench.profile

    def set_load(value):
        monkeypatch.setattr(bench.profile, "load_per_core", lambda: value)

    set_load(0.1)
    return set_load


def test_a_disturbed_latency_is_measured_again_until_steady(load):
    from bench.profile import MAX_LATENCY_SPREAD, measure_quietly

    fake = _FakeProfile([5 * MAX_LATENCY_SPREAD, 2 * MAX_LATENCY_SPREAD, MAX_LATENCY_SPREAD / 2, 0.0])
    result = measure_quietly(lambda: fake().to_dict())
    assert fake.calls == 3 and result["call"] == 3 and result["measure_attempts"] == 3
    assert result["latency_spread"] == MAX_LATENCY_SPREAD / 2 and result["quiet"] is True


def test_after_every_attempt_the_steadiest_is_kept_and_marked_not_quiet(load):
    from bench.profile import MAX_LATENCY_SPREAD, MEASURE_ATTEMPTS, measure_quietly

    fake = _FakeProfile([3 * MAX_LATENCY_SPREAD, 2 * MAX_LATENCY_SPREAD, 4 * MAX_LATENCY_SPREAD])
    result = measure_quietly(lambda: fake().to_dict())
    assert fake.calls == MEASURE_ATTEMPTS and result["call"] == 2 and result["quiet"] is False
    load(5.0)  # a steady latency on a loaded machine is not quiet either
    assert measure_quietly(lambda: _FakeProfile([0.0])().to_dict())["quiet"] is False


def test_a_busy_measurement_is_replaced_once_the_machine_is_quiet(load, monkeypatch, tmp_path):
    import bench.profile
    from bench.profile import MAX_LATENCY_SPREAD, cached_profile

    monkeypatch.setenv("KDBENCH_CACHE", str(tmp_path))
    lookup = lambda: cached_profile(lambda: None, "m", (3, 8, 8), 4)  # noqa: E731
    load(3.0)
    monkeypatch.setattr(bench.profile, "profile_model", _FakeProfile([0.0]))
    busy = lookup()
    assert busy["quiet"] is False and busy["load_per_core"] == 3.0
    monkeypatch.setattr(bench.profile, "profile_model", _FakeProfile([MAX_LATENCY_SPREAD / 4]))
    load(0.2)
    assert lookup() == busy  # this process already tried: one re-measurement per process at most
    monkeypatch.setattr(bench.profile, "_TRIED_HERE", set())
    load(3.0)
    assert lookup() == busy  # still busy: the cached measurement is reused, not re-taken under load
    load(0.2)
    monkeypatch.setattr(bench.profile, "_TRIED_HERE", set())  # as a later process would start
    quiet = lookup()
    assert quiet["quiet"] is True and quiet["latency_spread"] == MAX_LATENCY_SPREAD / 4
    monkeypatch.setattr(bench.profile, "profile_model", lambda *a, **k: pytest.fail("a quiet profile was re-taken"))
    assert lookup() == quiet
