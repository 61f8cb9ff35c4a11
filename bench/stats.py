"""Statistics over seeds, in pure Python (no numpy or scipy).

Every number on the leaderboard is a mean over seeds with its sample standard
deviation and a 95% confidence interval of the mean from Student's t
distribution. The t quantile is computed, not tabulated: the t CDF is written
through the regularized incomplete beta function (evaluated by its continued
fraction) and inverted by bisection, which is exact to double precision for
every number of degrees of freedom.

A table compares several methods with one reference (the ``baseline`` student,
and single-teacher ``kd`` where the table has it), so its comparisons form one
family: :func:`holm` gives each paired difference its two-sided paired t test,
Holm's step-down adjusted p-value and a Holm-consistent confidence interval,
plus the difference the comparison could have detected (:func:`detectable_difference`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

ALPHA = 0.05  # two-sided level of every interval: nominal 95% CIs, family-wise 95% after Holm
POWER = 0.8  # the power at which the minimal detectable difference is stated

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1) and 95% CI of the mean of ``n`` values.

    ``std`` and the CI are nan when ``n < 2`` (one seed has no spread: it is
    unknown, not zero); everything but ``n`` is nan when ``n == 0``.
    ``nonfinite`` counts the values that were nan or infinite: then std and CI
    are nan and the mean is nan, or +-inf when every non-finite value is an
    infinity of one sign; a summary never raises on such values, it flags them.
    """

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    nonfinite: int = 0


def summarize(values: Iterable[float]) -> Summary:
    """Summarize ``values`` (one per seed): mean, sample std and t-based 95% CI."""
    data = [float(v) for v in values]
    n = len(data)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    nonfinite = [v for v in data if not math.isfinite(v)]
    if nonfinite:  # e.g. COCO's AP of a size range without ground truth (nan), or a diverged run (inf)
        signs = {math.copysign(1.0, v) for v in nonfinite if math.isinf(v)}
        mean = math.inf * signs.pop() if len(signs) == 1 and not any(map(math.isnan, nonfinite)) else math.nan
        return Summary(mean, math.nan, n, math.nan, math.nan, len(nonfinite))
    mean = math.fsum(data) / n
    if n == 1:
        return Summary(mean, math.nan, 1, math.nan, math.nan)
    std = statistics.stdev(data, xbar=mean)
    low, high = interval(mean, std, n, ALPHA)
    return Summary(mean, std, n, low, high)


def interval(mean: float, std: float, n: int, alpha: float) -> tuple[float, float]:
    """Two-sided ``1 - alpha`` Student-t confidence interval of a mean of ``n >= 2`` values."""
    half_width = t_quantile(1.0 - alpha / 2.0, n - 1) * std / math.sqrt(n)
    return mean - half_width, mean + half_width


def paired_difference(method_by_seed: Mapping[int, float],
                      baseline_by_seed: Mapping[int, float]) -> Summary:
    """Summary of ``method - baseline`` over the seeds present in both mappings.

    Pairing by seed removes the seed-to-seed variation the two runs share
    (same initial data order, same split), so the CI is tighter than comparing
    two independent means. With no shared seed the summary has ``n == 0``.
    """
    shared = sorted(method_by_seed.keys() & baseline_by_seed.keys())
    return summarize(method_by_seed[s] - baseline_by_seed[s] for s in shared)


def paired_t_pvalue(diff: Summary) -> float:
    """Two-sided p-value of the paired t test of ``mean == 0`` for a :func:`paired_difference`.

    ``t = mean / (std / sqrt(n))`` with ``n - 1`` degrees of freedom; the
    two-sided tail ``P(|T| >= |t|)`` equals ``I_x(df/2, 1/2)`` with
    ``x = df / (df + t^2)``. nan (not testable) with fewer than two pairs or a
    non-finite value; with zero spread it is 1 for a zero mean, else 0.
    """
    if diff.n < 2 or diff.nonfinite or not math.isfinite(diff.mean):
        return math.nan
    if diff.std == 0.0:
        return 1.0 if diff.mean == 0.0 else 0.0
    df = diff.n - 1
    t = diff.mean / (diff.std / math.sqrt(diff.n))
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df > 0`` degrees of freedom (nan for a nan ``t``)."""
    if math.isnan(t):
        return math.nan
    if math.isinf(df):
        return statistics.NormalDist().cdf(t)
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t > 0 else tail


def detectable_difference(diff: Summary, alpha: float, power: float = POWER) -> float:
    """The true mean difference a two-sided paired t test at level ``alpha`` detects with
    probability ``power``, given the observed sd of the differences and their number.

    The usual approximation of the noncentral t power (e.g. Lenth, "Some practical
    guidelines for effective sample size determination", 2001):
    ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)``; the neglected lower
    rejection tail makes it slightly conservative. nan when it cannot be computed
    (fewer than two pairs, a non-finite value).
    """
    if diff.n < 2 or not math.isfinite(diff.std):
        return math.nan
    df = diff.n - 1
    return (t_quantile(1.0 - alpha / 2.0, df) + t_quantile(power, df)) * diff.std / math.sqrt(diff.n)


@dataclass(frozen=True)
class Comparison:
    """One paired comparison of a family (a table), after Holm's adjustment.

    ``diff`` is the nominal summary of the paired differences (``diff.n`` is the
    number of paired seeds, ``diff.ci_low/high`` the nominal 95% CI). ``m`` is
    the number of tested comparisons of the family. ``level`` is the two-sided
    level of the Holm-adjusted interval ``[low, high]`` and ``mdd`` the
    difference a test at that level detects with 80% power. A comparison
    without a p-value (fewer than two paired seeds, a non-finite metric) is not
    tested: its p-values, level, interval and mdd are nan and it is not counted in ``m``.
    """

    diff: Summary
    m: int
    p: float
    p_holm: float
    level: float
    low: float
    high: float
    mdd: float

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p)

    @property
    def sign(self) -> int:
        """+1 or -1 when the adjusted interval lies above or below zero, else 0."""
        if self.low > 0.0:
            return 1
        if self.high < 0.0:
            return -1
        return 0


def holm(diffs: Mapping[K, Summary], alpha: float = ALPHA, power: float = POWER) -> dict[K, Comparison]:
    """Holm's step-down adjustment of a family of paired comparisons, p-values and intervals.

    Construction (Holm, "A simple sequentially rejective multiple test procedure",
    Scand. J. Statist. 1979): order the ``m`` tested comparisons by their nominal
    p-value, ``p_(1) <= ... <= p_(m)``.

    - Adjusted p-value: ``p_holm_(j) = max_{i <= j} min(1, (m - i + 1) p_(i))``,
      so a comparison is rejected at family-wise level ``alpha`` iff its adjusted
      p-value is at most ``alpha``.
    - Adjusted interval: the comparison ranked ``j`` gets the two-sided t interval
      at level ``alpha / (m - j + 1)`` while the step-down keeps rejecting (each
      earlier interval excluded zero at its own level). At the first rank ``j*``
      whose interval contains zero the procedure stops, and every comparison
      ranked ``j >= j*`` gets the level of the stop, ``alpha / (m - j* + 1)``,
      not its own larger one: the levels are made monotone as Holm's procedure
      requires, so an adjusted interval excludes zero exactly when Holm rejects.
      Every adjusted interval is at least as wide as the nominal one and at
      most as wide as the Bonferroni interval (level ``alpha / m``); the
      rejected ones are Holm's decisions, the others are Bonferroni-Holm-consistent
      intervals at the stopping level. (Intervals with a guaranteed
      simultaneous coverage for the step-down, Strassburger and Bretz 2008, are
      uninformative for the rejected comparisons; this construction is the
      customary compromise, stated as such.)

    ``diffs`` maps any key to a :func:`paired_difference`; the result has the same keys.
    """
    pvalues = {key: paired_t_pvalue(diff) for key, diff in diffs.items()}
    ranked = sorted((key for key, p in pvalues.items() if not math.isnan(p)), key=lambda k: pvalues[k])
    m = len(ranked)
    adjusted = dict(zip(ranked, holm_adjust([pvalues[key] for key in ranked]), strict=True))
    out: dict[K, Comparison] = {}
    stop_level = None
    for j, key in enumerate(ranked, start=1):
        diff = diffs[key]
        level = stop_level if stop_level is not None else alpha / (m - j + 1)
        low, high = interval(diff.mean, diff.std, diff.n, level)
        if stop_level is None and low <= 0.0 <= high:
            stop_level = level
        out[key] = Comparison(diff, m, pvalues[key], adjusted[key], level, low, high,
                              detectable_difference(diff, level, power))
    return {key: out.get(key) or Comparison(diff, m, *(math.nan,) * 6) for key, diff in diffs.items()}


def holm_adjust(pvalues: Iterable[float]) -> list[float]:
    """Holm's adjusted p-values, in the order given: with the ``m`` p-values sorted,
    ``p_holm_(j) = max_{i <= j} min(1, (m - i + 1) p_(i))`` (ties keep their order)."""
    pvalues = list(pvalues)
    m = len(pvalues)
    adjusted = [math.nan] * m
    running_max = 0.0
    for j, index in enumerate(sorted(range(m), key=pvalues.__getitem__), start=1):
        running_max = max(running_max, min(1.0, (m - j + 1) * pvalues[index]))
        adjusted[index] = running_max
    return adjusted


def t_quantile_975(df: float) -> float:
    """Two-sided 95% critical value of Student's t: the 0.975 quantile with ``df`` d.o.f."""
    return t_quantile(0.975, df)


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df > 0`` degrees of freedom, ``0 < p < 1``.

    For ``t > 0`` the upper tail is ``P(T > t) = I_x(df/2, 1/2) / 2`` with
    ``x = df / (df + t^2)``; the ``x`` giving the wanted tail is found by
    bisection (``I_x`` increases with ``x``) and mapped back to ``t``.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie in (0, 1), got {p!r}")
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if math.isinf(df):
        return statistics.NormalDist().inv_cdf(p)
    target = 2.0 * (1.0 - p)  # I_x(df/2, 1/2) at the wanted x
    lo, hi = 0.0, 1.0
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):  # the interval cannot shrink any more
            break
        if _betainc(df / 2.0, 0.5, mid) < target:
            lo = mid
        else:
            hi = mid
    x = 0.5 * (lo + hi)
    return math.sqrt(df * (1.0 - x) / x)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function ``I_x(a, b)`` for ``0 <= x <= 1``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    # The continued fraction converges fast on this side of the mean; use the
    # symmetry I_x(a, b) = 1 - I_{1-x}(b, a) on the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float, max_iter: int = 100_000, eps: float = 1e-15) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, max_iter + 1):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < eps:
            return result
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")
