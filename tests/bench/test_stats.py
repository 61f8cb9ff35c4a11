"""Tests of bench.stats against published t quantiles, hand-computed summaries and Holm
adjustments, and against independent computations written here (numerical integration of the
t density; Holm's step-down procedure run literally), since scipy and statsmodels are not installed."""

import math
import random

import pytest

from bench.stats import (
    ALPHA,
    Summary,
    detectable_difference,
    holm,
    holm_adjust,
    interval,
    paired_difference,
    paired_t_pvalue,
    summarize,
    t_cdf,
    t_quantile,
    t_quantile_975,
)


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
    assert (one.mean, one.n) == (5.0, 1)
    assert math.isnan(one.std)  # one seed has no spread: unknown, not 0.00
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
    summary = summarize([1.0, float("nan"), 3.0])
    assert summary.n == 3 and math.isnan(summary.mean) and math.isnan(summary.std)
    assert summary.nonfinite == 1


@pytest.mark.parametrize("values, mean", [
    ([70.0, math.inf, 71.0], math.inf),
    ([-math.inf, 1.0], -math.inf),
    ([math.inf, -math.inf], math.nan),  # math.fsum raised "-inf + inf in fsum" here
    ([math.inf, math.nan], math.nan),
])
def test_infinite_values_are_flagged_not_raised(values, mean):
    summary = summarize(values)  # statistics.stdev raised AttributeError on an infinity
    assert summary.n == len(values) and summary.nonfinite == sum(not math.isfinite(v) for v in values)
    assert summary.mean == mean or (math.isnan(mean) and math.isnan(summary.mean))
    assert math.isnan(summary.std) and math.isnan(summary.ci_low) and math.isnan(summary.ci_high)


def test_infinite_metric_in_a_paired_difference_is_not_tested():
    diff = paired_difference({0: math.inf, 1: 70.0, 2: 71.0}, {0: 60.0, 1: 61.0, 2: 62.0})
    assert diff.mean == math.inf and diff.nonfinite == 1
    assert math.isnan(paired_t_pvalue(diff))
    [comparison] = holm({"kd": diff}).values()
    assert not comparison.tested and comparison.m == 0 and comparison.sign == 0


# ----------------------------------------------------------------- t distribution and the paired t test

def _t_cdf_by_integration(t: float, df: int, steps: int = 20_000) -> float:
    """P(T <= t) as 1/2 + the integral of the t density from 0 to t (composite Simpson rule)."""
    norm = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    density = lambda x: norm * (1 + x * x / df) ** (-(df + 1) / 2)  # noqa: E731
    h = t / steps
    total = density(0.0) + density(t) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, steps))
    return 0.5 + total * h / 3


@pytest.mark.parametrize("t, df", [(0.5, 1), (2.0, 2), (-1.3, 3), (3.2, 4), (1.0, 9), (-2.5, 30)])
def test_t_cdf_matches_integrated_density(t, df):
    assert t_cdf(t, df) == pytest.approx(_t_cdf_by_integration(t, df), abs=1e-9)


def test_t_cdf_inverts_the_quantile_and_its_limits():
    for df in (1, 2, 5, 40):
        for p in (0.6, 0.8, 0.975, 0.999):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-12)
    assert t_cdf(0.0, 3) == 0.5 and t_cdf(math.inf, 3) == 1.0 and t_cdf(-math.inf, 3) == 0.0
    assert t_cdf(1.96, math.inf) == pytest.approx(0.975, abs=1e-4) and math.isnan(t_cdf(math.nan, 3))


def test_paired_t_pvalue_hand_computed():
    # diffs 1, 2, 3: t = 2 / (1 / sqrt 3) = 2 sqrt 3, df 2; for df 2, P(|T| > t) = 1 - t / sqrt(2 + t^2)
    t = 2 * math.sqrt(3)
    assert paired_t_pvalue(summarize([1.0, 2.0, 3.0])) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    assert paired_t_pvalue(summarize([2.0, 2.0])) == 0.0  # no spread, nonzero mean
    assert paired_t_pvalue(summarize([0.0, 0.0])) == 1.0
    assert math.isnan(paired_t_pvalue(summarize([2.0])))  # one pair: nothing to test


def test_interval_at_the_p_value_just_touches_zero():
    diff = summarize([1.0, 2.0, 3.0, 0.5])
    low, _ = interval(diff.mean, diff.std, diff.n, paired_t_pvalue(diff))
    assert low == pytest.approx(0.0, abs=1e-9)


# ----------------------------------------------------------------- Holm

def test_holm_adjusted_pvalues_hand_computed():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm_adjust([]) == []


def _holm_rejects(pvalues: list[float], alpha: float) -> list[bool]:
    """Holm's procedure as written in the paper: step down while p_(j) <= alpha / (m - j + 1)."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    rejected = [False] * len(pvalues)
    for j, index in enumerate(order):
        if pvalues[index] > alpha / (len(pvalues) - j):
            break
        rejected[index] = True
    return rejected


def test_holm_adjusted_pvalue_is_the_smallest_level_that_rejects():
    rng = random.Random(11)
    for _ in range(200):
        pvalues = [rng.random() ** 3 for _ in range(rng.randint(1, 8))]
        for p, adjusted in zip(pvalues, holm_adjust(pvalues), strict=True):
            # the procedure rejects at any level above the adjusted p-value and at none below
            index = pvalues.index(p)
            if adjusted < 1.0:  # an adjusted p-value of 1 is capped: no level in (0, 1) rejects
                assert _holm_rejects(pvalues, adjusted * (1 + 1e-9))[index]
            assert not _holm_rejects(pvalues, adjusted * (1 - 1e-9))[index]


def _family():
    """kd: diffs 4.8-5.4 (clearly above 0); fitnet: 1, 2, 3 (nominally p = 0.074); at: two seeds;
    crd: one paired seed (not tested)."""
    return {"kd": summarize([5.0, 5.4, 4.8, 5.2]), "fitnet": summarize([1.0, 2.0, 3.0]),
            "at": summarize([-0.5, 0.7]), "crd": summarize([2.0])}


def test_holm_intervals_hand_computed():
    result = holm(_family())
    kd, fitnet, at, crd = (result[k] for k in ("kd", "fitnet", "at", "crd"))
    assert kd.m == fitnet.m == at.m == 3  # crd is not a test
    assert not crd.tested and math.isnan(crd.low) and crd.diff.n == 1
    # kd ranks first: level 0.05 / 3, interval excludes 0 -> the step-down goes on
    assert kd.level == pytest.approx(ALPHA / 3) and kd.sign == 1
    assert kd.low == pytest.approx(kd.diff.mean - t_quantile(1 - ALPHA / 6, 3) * kd.diff.std / 2)
    # fitnet ranks second: level 0.05 / 2; its interval contains 0, so Holm stops here
    assert fitnet.level == pytest.approx(ALPHA / 2) and fitnet.sign == 0
    assert fitnet.high == pytest.approx(2.0 + t_quantile(1 - ALPHA / 4, 2) / math.sqrt(3))
    # at ranks third: its own level would be 0.05 / 1 but stays at the stopping level 0.05 / 2
    assert at.level == pytest.approx(ALPHA / 2) and at.sign == 0
    assert fitnet.p_holm == pytest.approx(max(3 * kd.p, 2 * fitnet.p))


def test_holm_interval_agrees_with_holm_decision_and_lies_between_nominal_and_bonferroni():
    rng = random.Random(12)
    for _ in range(200):
        family = {i: summarize(rng.gauss(rng.choice((0.0, 1.0, 3.0)), 1.0) for _ in range(rng.randint(2, 6)))
                  for i in range(rng.randint(1, 7))}
        result = holm(family)
        for c in result.values():
            assert (c.sign != 0) == (c.p_holm <= ALPHA)  # the interval says what Holm's test says
            assert c.low <= c.diff.ci_low and c.high >= c.diff.ci_high
            bonferroni = interval(c.diff.mean, c.diff.std, c.diff.n, ALPHA / c.m)
            assert c.low >= bonferroni[0] - 1e-9 and c.high <= bonferroni[1] + 1e-9


def test_detectable_difference_hand_computed():
    # n = 3, sd 1: (t_0.975,2 + t_0.8,2) / sqrt 3; for df 2, t_p = (2p - 1) sqrt(2 / (4 p (1 - p)))
    t_df2 = lambda p: (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))  # noqa: E731
    expected = (t_df2(0.975) + t_df2(0.8)) / math.sqrt(3)
    assert detectable_difference(summarize([1.0, 2.0, 3.0]), 0.05) == pytest.approx(expected, abs=1e-9)
    assert expected == pytest.approx(3.0965, abs=1e-4)
    # a stricter level needs a larger difference; one pair cannot detect anything
    assert detectable_difference(summarize([1.0, 2.0, 3.0]), 0.01) > expected
    assert math.isnan(detectable_difference(summarize([1.0]), 0.05))
    # many pairs: the normal approximation (z_0.975 + z_0.8) sd / sqrt n
    big = Summary(0.0, 2.0, 10**6, 0.0, 0.0)
    assert detectable_difference(big, 0.05) == pytest.approx((1.959964 + 0.841621) * 2.0 / 1000, rel=1e-5)
