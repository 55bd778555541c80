"""The served networks compiled (DIFFUSION_LAB_COMPILE), warmed up in the background once the server is ready.

`install` puts a CompiledBuckets (app/nets/compiled.py) where the sampler calls each network: the image DiT (its
row count: a guided image is two rows), the VAE decoder (images, or a clip's frames, per call) and the video DiT
(two rows of a clip at its longest). Until a shape is warm the network runs eagerly, so the server is ready at once
and answers from the first request; `warm_up` then compiles the buckets one after the other, the ones a single
reader needs first, on a thread of its own (it ends with the warm-up, and its OpenMP pool with it). Each bucket is
an AOTInductor package (torch.export, then inductor ahead of time: the fastest of the candidates measured), kept in
DIFFUSION_LAB_COMPILE_CACHE_DIR, so a restart loads in a fraction of a second what took the first start 15 to 50 s
per bucket (BENCHMARKS.md, "Compiled inference"). The caption encoder stays eager: it is about 1% of a sample's time.

`CompileState` is what /readyz reports: the setting, where the warm-up stands, and which buckets are ready.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from app.nets.compiled import AOTInductor, CompiledBuckets
from app.pipelines.image import Pipeline
from app.pipelines.video import VideoPipeline

log = logging.getLogger("diffusion_lab")
DIT_ROWS = (2, 4, 8, 16, 32, 64)  # a guided image is 2 rows; the service batches up to 32 images
DECODE_BATCHES = (1, 2, 4, 8, 16, 32)
VIDEO_ROWS = (2,)  # one guided clip


DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "diffusion-lab-compiled"


def inductor_options(device: torch.device) -> dict:
    """Freezing on the CPU: the weights become constants that inductor folds and lays out for its kernels."""
    return {"freezing": True} if device.type == "cpu" else {}


@dataclass
class CompileState:
    """Where compiling stands: "off", "pending" (installed, warm-up not begun), "warming", "ready" or "failed"."""

    setting: str
    state: str = "off"
    networks: dict[str, CompiledBuckets] = field(default_factory=dict)
    cache_dir: str | None = None
    warm_up_s: float | None = None
    error: str | None = None

    def as_dict(self) -> dict:
        return {"setting": self.setting, "state": self.state, "cache_dir": self.cache_dir,
                "warm_up_s": self.warm_up_s, "error": self.error,
                "buckets": {name: {"all": list(net.buckets), "ready": net.ready_buckets,
                                   "seconds": dict(net.warm_seconds)} for name, net in self.networks.items()}}


def wanted(setting: str, device: torch.device) -> bool:
    """Whether to compile: "on" always, "auto" where it was measured to help, the CPU (BENCHMARKS.md); on CUDA "auto"
    stays eager until bench/gpu_check.py has timed the compiled path there."""
    return setting == "on" or (setting == "auto" and device.type == "cpu")


def install(image: Pipeline, video: VideoPipeline | None, setting: str, cache_dir: Path | None = None) -> CompileState:
    """Wrap the sampler's networks (nothing is compiled yet); returns the state to warm up and report."""
    state = CompileState(setting)
    if not wanted(setting, image.device):
        return state
    cache_dir = Path(cache_dir or DEFAULT_CACHE_DIR)
    state.cache_dir = str(cache_dir)
    options = inductor_options(image.device)

    def wrap(name: str, module, buckets) -> CompiledBuckets:
        return state.networks.setdefault(name, CompiledBuckets(module, buckets, AOTInductor(cache_dir, name, options)))

    image.dit = wrap("dit", image.dit, DIT_ROWS)
    image.vae.decoder = wrap("decoder", image.vae.decoder, DECODE_BATCHES)
    if video is not None:
        video.dit = wrap("video_dit", video.dit, VIDEO_ROWS)
    state.state = "pending"
    return state


def warm_up_plan(image: Pipeline, video: VideoPipeline | None, state: CompileState) -> list[tuple[str, tuple]]:
    """(network, example arguments) for every bucket, in the order readers need them."""
    context, mask = image.encode_captions([""])  # (1, L, D), (1, L)
    c, s = image.dit.config.latent_channels, image.dit.config.latent_size

    def dit_args(rows: int, frames: int | None = None, text=(context, mask)) -> tuple:
        shape = (rows, c, s, s) if frames is None else (rows, frames, c, s, s)
        ctx, keep = text
        return (torch.zeros(shape, device=image.device), torch.full((rows,), 500, device=image.device),
                ctx.expand(rows, *ctx.shape[1:]).contiguous(), keep.expand(rows, *keep.shape[1:]).contiguous())

    def decode_args(batch: int) -> tuple:
        return (torch.zeros(batch, c, s, s, device=image.device),)

    plan = [("dit", dit_args(2)), ("decoder", decode_args(1))]
    if video is not None and "video_dit" in state.networks:
        plan += [("video_dit", dit_args(2, video.max_frames, video.encode_captions([""]))),
                 ("decoder", decode_args(video.max_frames))]
    plan += [("dit", dit_args(rows)) for rows in DIT_ROWS if rows != 2]
    plan += [("decoder", decode_args(b)) for b in DECODE_BATCHES if b not in (1, video.max_frames if video else 1)]
    return plan


def warm_up(image: Pipeline, video: VideoPipeline | None, state: CompileState, threads: int = 0) -> None:
    """Compile every bucket in turn (blocking; run it on a thread of its own). A failure leaves the eager path."""
    if state.state != "pending":
        return
    if threads > 0:
        torch.set_num_threads(threads)
    state.state = "warming"
    started = time.perf_counter()
    try:
        for name, args in warm_up_plan(image, video, state):
            seconds = state.networks[name].warm(args)
            log.info("compiled %s for batch %d in %.1f s", name, args[0].shape[0], seconds)
    except Exception as err:  # noqa: BLE001 (whatever inductor raises, the eager path serves on)
        state.state, state.error = "failed", f"{type(err).__name__}: {err}"
        log.error("compiling the networks failed; sampling stays eager: %s", state.error)
        return
    state.warm_up_s = round(time.perf_counter() - started, 1)
    state.state = "ready"
    log.info("compiled every bucket in %.1f s", state.warm_up_s)


def start_warm_up(image: Pipeline, video: VideoPipeline | None, state: CompileState, threads: int = 0) -> None:
    """warm_up on a daemon thread that ends with it."""
    if state.state == "pending":
        threading.Thread(target=warm_up, args=(image, video, state, threads), name="torch-compile",
                         daemon=True).start()
