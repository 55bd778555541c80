"""Recorded benchmark results that the app serves as they were measured (bench/scaling.py writes them).

The /benchmarks page shows bench/results/scaling.json: how sampling time grows with the steps, the batch and the
resolution, measured once on a named machine, never live. This module reads the file back for
GET /api/v1/benchmarks/scaling (the fits the benchmark reports are app/measure/fits.py's).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from app.web.schemas import ScalingResult

SCALING_FILE = "scaling.json"
SCALING_FORMAT = 1  # bump when the file's shape changes
REPRODUCE = "python bench/scaling.py"


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
