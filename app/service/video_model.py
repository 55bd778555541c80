"""The video model as the server holds it: loading it beside the image model, its identity and what GET /model
says of it, and a clip's step as a preview strip. A clip request is an ordinary job of the sampling service,
sampled by the loaded ClipGenerator (app/pipelines/video.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.nets.io import WeightsError
from app.pipelines.image import WEIGHT_FILES, Pipeline
from app.pipelines.video import VIDEO_WEIGHT_FILES, ClipGenerator, ClipSettings, VideoPipeline
from app.service.imaging import encode_png
from app.service.models import fingerprint, read_card, training_record
from app.service.previews import latent_to_rgb


@dataclass
class LoadedVideo:
    """The generator that serves clips (and the per-frame baseline) ready to sample, and its identity."""

    generator: ClipGenerator
    model_id: str  # short hash of the VAE and the two video weights files
    load_s: float
    warm_up_s: float

    @property
    def pipeline(self) -> VideoPipeline:
        return self.generator.video

    @property
    def max_frames(self) -> int:
        return self.pipeline.max_frames


def missing_video_files(model_dir: str | Path) -> str | None:
    """Why the video model cannot be loaded from model_dir (its missing files), or None when both are there."""
    missing = [name for name in VIDEO_WEIGHT_FILES.values() if not (Path(model_dir) / name).is_file()]
    if not missing:
        return None
    return f"video model not loaded: file{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing in {model_dir}"


def load_video(model_dir: str | Path, image: Pipeline) -> LoadedVideo:
    """Load the video files onto the image model's device, sharing its VAE, and sample one short clip.

    Any failure is a WeightsError naming the video files, so the server can report it and serve images on.
    """
    started = time.perf_counter()
    try:
        pipeline = VideoPipeline.load(model_dir, image.vae)
        model_id = fingerprint(model_dir, (WEIGHT_FILES["vae"], *VIDEO_WEIGHT_FILES.values()))
        loaded = time.perf_counter()
        pipeline.generate(ClipSettings(prompt="", steps=1, guidance_scale=1.0, frames=min(2, pipeline.max_frames)))
    except WeightsError:
        raise
    except Exception as err:  # a config the code does not know, a schedule missing from the metadata, ...
        files = " and ".join(VIDEO_WEIGHT_FILES.values())
        raise WeightsError(f"cannot use the video weights {files} in {model_dir}: {type(err).__name__}: {err}") \
            from err
    return LoadedVideo(ClipGenerator(pipeline, image), model_id, load_s=loaded - started,
                       warm_up_s=time.perf_counter() - loaded)


# ------------------------------------------------------------------------------------------ one clip request


def strip_png(x0_hat: torch.Tensor) -> bytes:
    """The frames' latents (F, C, h, w) side by side, left to right, as one latent-size PNG (h, F w) (no decode)."""
    return encode_png(np.concatenate([latent_to_rgb(z) for z in x0_hat], axis=1))


# ------------------------------------------------------------------------------------------ what GET /model says

VIDEO_CARD_FILE = "video-card.json"


def video_section(model_dir: str | Path, video: LoadedVideo | None, error: str | None) -> dict | None:
    """GET /model's `video`: None when no video file is there; else the files' config and training record,
    parameter counts and identity when loaded, the load error when not, and the video card."""
    model_dir = Path(model_dir)
    if video is None and all(not (model_dir / name).is_file() for name in VIDEO_WEIGHT_FILES.values()):
        return None
    if video is None and error is None:
        error = "video model not loaded: it loads after the image model, which is not loaded"
    section = {"loaded": video is not None, "load_error": error, "model_id": None, "max_frames": None,
               "attention": None, "config": None, "text_encoder_config": None, "parameters": None, "training": None}
    try:
        meta = VideoPipeline.metadata_of(model_dir)
        config = meta["dit"]["config"]
        section |= {"config": config, "text_encoder_config": meta["text"]["config"],
                    "max_frames": config.get("frames"), "attention": config.get("attention"),
                    "training": training_record(meta["dit"]["extra"])}
    except WeightsError as err:
        section["load_error"] = section["load_error"] or str(err)
    if video is not None:
        nets = {"text_encoder": video.pipeline.text, "denoiser": video.pipeline.dit}
        counts = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
        section |= {"model_id": video.model_id, "max_frames": video.max_frames,
                    "parameters": counts | {"total": sum(counts.values())}}
    card, card_error = read_card(model_dir, VIDEO_CARD_FILE, "diffusion-lab evaluate-video")
    return section | {"card_found": card is not None, "card_error": card_error, "card": card}
