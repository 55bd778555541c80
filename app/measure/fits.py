"""Fits of measured times against a size: a power law on log-log axes, its local slopes, and a straight line.

The scaling benchmark reports them (bench/scaling.py, the /benchmarks page), and so does the live cost-vs-N timing
of chapter §3.4's three families (app/lab/family_cost.py): "time grows like N^k" is the least-squares slope k.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def loglog_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of y = c x^k on log-log axes: (k, c). Needs two distinct positive x and positive y."""
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} x values but {len(ys)} y values")
    if any(not (v > 0 and math.isfinite(v)) for v in (*xs, *ys)):
        raise ValueError("a log-log fit needs positive, finite values")
    if len(set(xs)) < 2:
        raise ValueError("a fit needs at least two distinct x values")
    slope, intercept = statistics.linear_regression([math.log(x) for x in xs], [math.log(y) for y in ys])
    return slope, math.exp(intercept)


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The exponent k of y ~ x^k: the least-squares slope of log y against log x."""
    return loglog_fit(xs, ys)[0]


def local_exponents(xs: Sequence[float], ys: Sequence[float]) -> list[float | None]:
    """The slope of log y against log x between each point and the one before it (None for the first)."""
    return [None] + [math.log(ys[i] / ys[i - 1]) / math.log(xs[i] / xs[i - 1]) for i in range(1, len(xs))]


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares straight line y = a + b x: (a, b), e.g. a fixed cost and a cost per step."""
    if len(set(xs)) < 2:
        raise ValueError("a fit needs at least two distinct x values")
    slope, intercept = statistics.linear_regression(list(xs), list(ys))
    return intercept, slope
