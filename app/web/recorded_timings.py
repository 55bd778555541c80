"""The recorded benchmark figure for the same computation as a live timing, so a page can show the two side by side.

A record matches only when it timed the same thing: for the latent-vs-pixel forwards, bench/scaling.py's
resolution rows (one guided DiT forward of the committed configuration at a token count) against the served DiT's
configuration, batch and tokens; for the attention timing, bench/video.py's forward rows against the frames,
attention kind, tokens and parameter count of the live network. Where nothing matches, the note says why; no
figure is made up or scaled from another.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from app.web.benchmarks import SCALING_FILE, ScalingUnavailable, read_scaling
from app.web.schemas import RecordedTiming, ScalingMachine, VideoRecord

VIDEO_FILE = "video.json"
VIDEO_BATCH = 2  # bench/video.py times guided forwards: 2 rows (it does not write the batch into its file)
SAME_COST = ("width", "depth", "heads", "mlp_ratio", "context_dim", "pooled_text")  # what a DiT forward costs

def describe(machine: ScalingMachine) -> str:
    return f"{machine.cpu}, {machine.cores} cores, torch {machine.torch}, {machine.threads} threads"


Found = tuple[RecordedTiming | None, str]  # the figure (or None) and a sentence on what it is, or why it is absent


def scaling_forward(results_dir: Path, dit: dict, batch: int, tokens: int, channels: int, patch: int) -> Found:
    """bench/scaling.py's DiT forward at `tokens` for a DiT of configuration `dit` (DiTConfig.to_dict())."""
    try:
        record = read_scaling(results_dir)
    except ScalingUnavailable as err:
        return None, err.reason
    if record.quick:
        return None, f"bench/results/{SCALING_FILE} is a --quick smoke run, not a measurement to quote"
    differs = [k for k in SAME_COST if record.model.dit.get(k) != dit.get(k)]
    if differs:
        return None, (f"bench/results/{SCALING_FILE} timed a DiT of another configuration ({', '.join(differs)} "
                      "differ from this server's)")
    if record.resolution.dit_batch != batch:
        return None, f"bench/results/{SCALING_FILE} timed batches of {record.resolution.dit_batch}, not {batch}"
    row = next((r for r in record.resolution.rows if r.tokens == tokens), None)
    if row is None:
        recorded = ", ".join(f"{r.tokens:,}" for r in record.resolution.rows)
        return None, f"bench/results/{SCALING_FILE} has no row at {tokens:,} tokens (it has {recorded})"
    rec_channels, rec_patch = record.model.dit.get("latent_channels"), record.model.dit.get("patch")
    basis = (f"bench/scaling.py, resolution {row.resolution} px: the same DiT configuration with random weights on "
             f"a {row.latent_size} × {row.latent_size} × {rec_channels} latent, patch {rec_patch}, "
             f"{row.tokens:,} tokens, {batch} rows")
    if (channels, patch) != (rec_channels, rec_patch):
        basis += (f"; the live forward embeds {channels}-channel patches of {patch} × {patch}, so only its first "
                  "and last layer differ")
    figure = RecordedTiming(
        file=SCALING_FILE, command=record.command, recorded_at=record.recorded_at,
        machine=describe(record.machine), threads=record.machine.threads,
        load_average=row.load_average, median_ms=row.dit_median_ms, best_ms=row.dit_best_ms, basis=basis)
    return figure, basis


def read_video(results_dir: Path) -> VideoRecord:
    """bench/results/video.json, validated; ValueError with the reason otherwise."""
    path = Path(results_dir) / VIDEO_FILE
    if not path.is_file():
        raise ValueError(f"no video benchmark is recorded on this server (bench/results/{VIDEO_FILE} is absent)")
    try:
        return VideoRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as err:
        raise ValueError(f"bench/results/{VIDEO_FILE} could not be read: {err}") from None


def video_forward(results_dir: Path, attention: str, frames: int, tokens: int, parameters: int) -> Found:
    """bench/video.py's guided forward of the `attention` network at `frames` frames, if it is this network."""
    try:
        record = read_video(results_dir)
    except ValueError as err:
        return None, str(err)
    rows = [r for r in record.forward if r.attention == attention]
    row = next((r for r in rows if r.frames == frames), None)
    if row is None:
        recorded = ", ".join(str(r.frames) for r in rows) or "none"
        return None, f"bench/results/{VIDEO_FILE} has no {attention} row at {frames} frames (it has {recorded})"
    if (row.tokens, row.parameters) != (tokens, parameters):
        return None, (f"bench/results/{VIDEO_FILE} timed another network ({row.tokens:,} tokens, "
                      f"{row.parameters:,} parameters; this server's has {tokens:,} and {parameters:,})")
    basis = (f"bench/video.py: one no-grad guided forward ({VIDEO_BATCH} rows) of the {attention} video DiT built "
             f"from the image DiT's weights, {frames} frames, {tokens:,} tokens, "
             f"{parameters:,} parameters as here")
    machine = (describe(record.machine) if record.machine else
               f"CPU and cores not recorded in the file; torch {record.torch}, {record.threads} threads")
    figure = RecordedTiming(
        file=VIDEO_FILE, command=record.command, recorded_at=record.recorded_at,
        machine=machine, threads=record.threads, load_average=row.load_average,
        median_ms=row.median_ms, best_ms=row.best_ms, basis=basis)
    return figure, basis
