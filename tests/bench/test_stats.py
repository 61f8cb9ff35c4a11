"""Tests of bench.stats against published t quantiles and hand-computed summaries."""

import math

import pytest

from bench.stats import Summary, paired_difference, summarize, t_quantile, t_quantile_975


@pytest.mark.parametrize("df, expected, tol", [
    (1, 12.706, 1e-3), (2, 4.303, 1e-3), (4, 2.776, 1e-3), (10, 2.228, 1e-3), (30, 2.042, 1e-3),
    (60, 2.000, 1e-3), (1000, 1.962, 1e-3), (math.inf, 1.95996, 1e-5),
])
def test_t_quantile_975_matches_tables(df, expected, tol):
    assert t_quantile_975(df) == pytest.approx(expected, abs=tol)


def test_t_quantile_other_levels_and_symmetry():
    assert t_quantile(0.995, 5) == pytest.approx(4.032, abs=1e-3)
    assert t_quantile(0.9, 1) == pytest.approx(3.078, abs=1e-3)  # tan(0.4 pi)
    assert t_quantile(0.025, 3) == pytest.approx(-t_quantile_975(3))
    assert t_quantile(0.5, 7) == 0.0


def test_t_quantile_decreases_towards_normal():
    values = [t_quantile_975(df) for df in (1, 2, 5, 30, 100, 10_000)]
    assert values == sorted(values, reverse=True)
    assert values[-1] > t_quantile_975(math.inf)


@pytest.mark.parametrize("p, df", [(0.0, 3), (1.0, 3), (0.9, 0), (0.9, -1)])
def test_t_quantile_rejects_bad_arguments(p, df):
    with pytest.raises(ValueError):
        t_quantile(p, df)


def test_summarize_hand_computed():
    # mean 70; deviations -2, 0, 2 -> sample variance 8/2 = 4, std 2;
    # CI half-width t(2) * 2 / sqrt(3) = 4.303 * 1.1547 = 4.968.
    s = summarize([68.0, 70.0, 72.0])
    assert (s.mean, s.std, s.n) == (70.0, 2.0, 3)
    assert s.ci_low == pytest.approx(70.0 - 4.9683, abs=1e-4)
    assert s.ci_high == pytest.approx(70.0 + 4.9683, abs=1e-4)


def test_summarize_single_value_and_empty():
    one = summarize([5.0])
    assert (one.mean, one.std, one.n) == (5.0, 0.0, 1)
    assert math.isnan(one.ci_low) and math.isnan(one.ci_high)
    empty = summarize([])
    assert empty.n == 0 and math.isnan(empty.mean)


def test_paired_difference_uses_shared_seeds_only():
    method = {0: 72.0, 1: 73.0, 2: 74.0, 5: 10.0}
    baseline = {0: 71.0, 1: 71.0, 2: 71.0, 7: 99.0}
    d = paired_difference(method, baseline)
    # differences 1, 2, 3: mean 2, std 1, half-width 4.303 / sqrt(3) = 2.484
    assert (d.mean, d.std, d.n) == (2.0, 1.0, 3)
    assert d.ci_low == pytest.approx(2.0 - 2.4841, abs=1e-4)
    assert d.ci_high == pytest.approx(2.0 + 2.4841, abs=1e-4)


def test_paired_difference_without_shared_seeds():
    d = paired_difference({0: 1.0}, {1: 1.0})
    assert isinstance(d, Summary) and d.n == 0 and math.isnan(d.mean)


def test_nan_values_summarize_to_nan():
    from bench.stats import summarize

    summary = summarize([1.0, float("nan"), 3.0])
    assert summary.n == 3 and math.isnan(summary.mean) and math.isnan(summary.std)
