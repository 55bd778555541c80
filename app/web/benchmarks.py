"""Recorded benchmark results that the app serves as they were measured (bench/scaling.py writes them).

The /benchmarks page shows bench/results/scaling.json: how sampling time grows with the steps, the batch and the
resolution, measured once on a named machine, never live. This module holds the fits the benchmark reports
(a log-log slope, a straight line) and reads the file back for GET /api/v1/benchmarks/scaling.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from app.web.schemas import ScalingResult

SCALING_FILE = "scaling.json"
SCALING_FORMAT = 1  # bump when the file's shape changes
REPRODUCE = "python bench/scaling.py"


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


class ScalingUnavailable(Exception):
    """No usable scaling record: status is 404 when the file is absent, 503 when it cannot be read."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def scaling_path(results_dir: Path) -> Path:
    return Path(results_dir) / SCALING_FILE


def read_scaling(results_dir: Path) -> ScalingResult:
    """The recorded scaling measurement in results_dir, validated; ScalingUnavailable with a reason otherwise."""
    path = scaling_path(results_dir)
    if not path.is_file():
        raise ScalingUnavailable(404, "no scaling measurement is recorded on this server: "
                                      f"bench/results/{SCALING_FILE} is absent. Record one with `{REPRODUCE}` in a checkout (it writes that file), "
                                      "or point DIFFUSION_LAB_BENCH_RESULTS_DIR at a folder that holds one.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ScalingUnavailable(503, f"bench/results/{SCALING_FILE} could not be read: {err}") from None
    try:
        record = ScalingResult.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ScalingUnavailable(503, f"bench/results/{SCALING_FILE} is not a scaling record of format "
                                      f"{SCALING_FORMAT} ({err.error_count()} problem(s); first: {where}: "
                                      f"{first['msg']}); rerun `{REPRODUCE}`") from None
    if record.format != SCALING_FORMAT:
        raise ScalingUnavailable(503, f"bench/results/{SCALING_FILE} has format {record.format}, this server reads "
                                      f"format {SCALING_FORMAT}; rerun `{REPRODUCE}`")
    return record
