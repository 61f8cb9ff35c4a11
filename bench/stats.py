"""Statistics over seeds, in pure Python (no numpy or scipy).

Every number on the leaderboard is a mean over seeds with its sample standard
deviation and a 95% confidence interval of the mean from Student's t
distribution. The t quantile is computed, not tabulated: the t CDF is written
through the regularized incomplete beta function (evaluated by its continued
fraction) and inverted by bisection, which is exact to double precision for
every number of degrees of freedom.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (ddof=1) and 95% CI of the mean of ``n`` values.

    ``std`` is 0.0 for a single value and the CI is (nan, nan) when ``n < 2``;
    everything but ``n`` is nan when ``n == 0``.
    """

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float


def summarize(values: Iterable[float]) -> Summary:
    """Summarize ``values`` (one per seed): mean, sample std and t-based 95% CI."""
    data = [float(v) for v in values]
    n = len(data)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    if any(math.isnan(v) for v in data):  # e.g. COCO's AP of a size range without ground truth
        return Summary(math.nan, math.nan, n, math.nan, math.nan)
    mean = math.fsum(data) / n
    if n == 1:
        return Summary(mean, 0.0, 1, math.nan, math.nan)
    std = statistics.stdev(data, xbar=mean)
    half_width = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half_width, mean + half_width)


def paired_difference(method_by_seed: Mapping[int, float],
                      baseline_by_seed: Mapping[int, float]) -> Summary:
    """Summary of ``method - baseline`` over the seeds present in both mappings.

    Pairing by seed removes the seed-to-seed variation the two runs share
    (same initial data order, same split), so the CI is tighter than comparing
    two independent means. With no shared seed the summary has ``n == 0``.
    """
    shared = sorted(method_by_seed.keys() & baseline_by_seed.keys())
    return summarize(method_by_seed[s] - baseline_by_seed[s] for s in shared)


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
