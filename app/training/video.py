"""Train the space-time denoiser: the `video` sub-command (`python3 -m app.training video`).

The video DiT starts from the trained image DiT and caption encoder (VideoDiT.from_image_dit), so training
spends its steps on what a clip adds: how the frames relate and what `moving left` means. Clips come from a
seeded bank encoded once by the frozen VAE (app.training.clip_bank); each step draws clips from it, plays half
of them backwards (a clip reversed is another valid clip, with the opposite direction and a new start), and
draws fresh captions, timesteps and noise.

Files written: --out (default models/video_denoiser.safetensors) and --text-out (default
video_text_encoder.safetensors beside it), both EMA weights, with the same provenance as the image model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from app.diffusion.schedule import NoiseSchedule
from app.nets.dit import DiT, DiTConfig
from app.nets.io import load_module, read_metadata, save_module
from app.nets.text import TextEncoder, TextEncoderConfig
from app.nets.vae import VAE, VAEConfig
from app.nets.video_dit import VideoDiT, VideoDiTConfig
from app.training import distributed
from app.training.clip_bank import encode_clips, load_or_build_bank
from app.training.loop import Run, fit, provenance, read_checkpoint, setup_backend
from app.world.clips import random_clip_captions, reverse_clips, sample_clips, select
from app.world.held_out import VAL_SEED
from app.world.scenes import SHAPES

BANK_SEED = 20_261_126


class TextToClip(nn.Module):
    """Caption encoder and video DiT, trained together (one optimizer, one EMA)."""

    def __init__(self, text: TextEncoderConfig, dit: VideoDiTConfig):
        super().__init__()
        self.text = TextEncoder(text)
        self.dit = VideoDiT(dit)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        context, mask = self.text(tokens)
        return self.dit(x_t, t, context, mask)  # (B, F, C, h, w)


def initial_model(args: argparse.Namespace, device: torch.device) -> TextToClip:
    """The image model's caption encoder and DiT, wrapped for clips (or a fresh model with --from-scratch)."""
    text, _ = load_module(args.init_text, TextEncoder, TextEncoderConfig)
    image, _ = load_module(args.init_dit, DiT, DiTConfig)
    video = VideoDiT.from_image_dit(image, args.frames, args.attention)
    model = TextToClip(text.config, video.config)
    if not args.from_scratch:
        model.text.load_state_dict(text.state_dict())
        model.dit.load_state_dict(video.state_dict())
    return model.to(device)


def train_video(args: argparse.Namespace, device: torch.device) -> tuple[Path, Path]:
    from app.diffusion.schedule import sample_timesteps, training_loss
    from app.world.scenes import VOCAB, tokenize

    setup_backend(device)
    torch.manual_seed(args.seed)
    vae, vae_extra = load_module(args.vae, VAE, VAEConfig, device)
    vae.requires_grad_(False)
    model = initial_model(args, device)
    run = Run(args, device, model, {"text": model.text.config.to_dict(), "dit": model.dit.config.to_dict()})
    warm, earlier = None, None
    if args.warm_start:
        warm, earlier = warm_start(run, args.warm_start)
    if args.resume:
        state = read_checkpoint(args.resume, "video")
        run.load_checkpoint(state)
        earlier = checkpoint_schedule(state, args.init_dit)
    schedule = training_schedule(args.init_dit, args.terminal_signal, earlier)
    run.configs["schedule"] = schedule.config()  # so a warm start or resume from this run's checkpoints keeps it
    tqdm.write(f"training schedule: sqrt(abar_T) = {float(schedule.alphas_cumprod[-1].sqrt()):.4f}")
    weighting = None if args.weighting == "none" else args.weighting
    bank = distributed.rank_zero_first(lambda: load_or_build_bank(args.bank, vae, args.bank_size, args.bank_seed,
                                                                  args.frames, args.resolution, device, log=tqdm.write))
    bank_latents = bank["latents"].to(device)  # (N, F, C, h, w)
    forward = run.parallel(model)
    bank_clips = bank["clips"]
    bank_reversed = reverse_clips(bank_clips)
    odds = draw_odds(bank_clips, args.circle_weight)

    def train_step() -> torch.Tensor:
        if odds is None:
            index = run.rng.integers(0, len(bank_clips), args.batch)
        else:
            index = run.rng.choice(len(bank_clips), args.batch, p=odds)
        backwards = run.rng.random(args.batch) < args.p_reverse
        forwards, reversed_ = select(bank_clips, index), select(bank_reversed, index)
        clips = _merge(forwards, reversed_, backwards)
        z0 = bank_latents[torch.from_numpy(index).to(device)]  # (B, F, C, h, w)
        flip = torch.from_numpy(backwards).to(device)[:, None, None, None, None]
        z0 = torch.where(flip, z0.flip(1), z0)
        captions = random_clip_captions(clips, run.rng, p_partial=args.p_partial, p_drop=args.p_drop,
                                        p_start=args.p_start)
        tokens = torch.from_numpy(tokenize(captions)).to(device)  # (B, L)
        t = sample_timesteps(args.batch, schedule.T, run.cpu_gen)
        if args.high_noise_share > 0:  # where the clip's layout and direction are decided (see add_parser)
            high = torch.rand(args.batch, generator=run.cpu_gen) < args.high_noise_share
            t = torch.where(high, schedule.T // 2 + t // 2, t)
        eps = torch.randn(z0.shape, generator=run.gen, device=device)
        z0, tokens, t, eps = map(run.shard, (z0, tokens, t, eps))  # drawn whole (cheap), this rank's part trained
        return training_loss(lambda x_t, tt: forward(x_t, tt.to(device), tokens).float(), z0, t, eps, schedule,
                             prediction="v", weighting=weighting)

    val_clips = sample_clips(args.val_size, np.random.default_rng(VAL_SEED), args.frames, args.resolution)
    val_tokens = torch.from_numpy(tokenize(random_clip_captions(val_clips, np.random.default_rng(VAL_SEED),
                                                                args.p_partial, args.p_drop))).to(device)
    val_z0 = encode_clips(vae, val_clips, device).to(device)
    val_t = torch.linspace(0, schedule.T - 1, len(val_z0)).round().long()
    val_eps = torch.randn(val_z0.shape, generator=torch.Generator().manual_seed(VAL_SEED)).to(device)

    @torch.no_grad()
    def validate(ema: TextToClip, final: bool) -> dict:
        loss = 0.0
        for i in range(0, len(val_z0), 64):
            part = slice(i, i + 64)
            loss += training_loss(lambda x_t, tt: ema(x_t, tt.to(device), val_tokens[part]).float(), val_z0[part],
                                  val_t[part], val_eps[part], schedule, prediction="v").item() * len(val_z0[part])
        return {"val_loss": loss / len(val_z0)}

    summary = fit(run, train_step, validate)
    ema = run.ema.module
    text_out = Path(args.text_out) if args.text_out else Path(args.out).with_name("video_text_encoder.safetensors")
    shared = provenance(run, summary) | {"bank": {"clips": len(bank_clips), "seed": args.bank_seed,
                                                  "encode_seconds": bank.get("seconds")}, "warm_start": warm}
    dit_extra = shared | {
        "prediction": "v", "schedule": schedule.config(), "weighting": args.weighting,
        "vae": str(args.vae), "vae_git_commit": vae_extra.get("git_commit"), "text_encoder": text_out.name,
        "initialised_from": None if args.from_scratch else [str(args.init_dit), str(args.init_text)],
        "resolution": args.resolution, "param_count": sum(p.numel() for p in ema.dit.parameters()),
    }
    text_extra = shared | {"vocab": list(VOCAB), "denoiser": Path(args.out).name,
                           "param_count": sum(p.numel() for p in ema.text.parameters())}
    path = save_module(args.out, ema.dit, ema.dit.config, dit_extra)
    save_module(text_out, ema.text, ema.text.config, text_extra)
    tqdm.write(f"wrote {path} and {text_out}")
    return path, text_out


def training_schedule(init_dit: str | Path, terminal_signal: float | None,
                      earlier: NoiseSchedule | None = None) -> NoiseSchedule:
    """The schedule a video run trains on.

    With --terminal-signal: the image DiT's (from its metadata), rescaled. Without it: the schedule of the weights
    the run warm-starts or resumes from (`earlier`), so continuing a run never silently switches schedule; with
    neither, the image DiT's.
    """
    if terminal_signal is None and earlier is not None:
        return earlier
    schedule = NoiseSchedule.from_config(read_metadata(init_dit)["extra"]["schedule"])
    return schedule if terminal_signal is None else schedule.with_terminal_signal(terminal_signal)


def checkpoint_schedule(state: dict, init_dit: str | Path) -> NoiseSchedule | None:
    """The schedule a checkpoint's weights were trained on, or None for the image DiT's.

    Checkpoints record it under configs; earlier ones only record --terminal-signal among their arguments.
    """
    if "schedule" in state["configs"]:
        return NoiseSchedule.from_config(state["configs"]["schedule"])
    terminal_signal = state["args"].get("terminal_signal")
    return None if terminal_signal is None else training_schedule(init_dit, terminal_signal)


def warm_start(run: Run, path: str) -> tuple[dict, NoiseSchedule | None]:
    """Start from earlier video weights where the names match; new modules keep their init.

    `path` is a training checkpoint (.pt: model and EMA) or committed weights (video_denoiser.safetensors, with
    video_text_encoder.safetensors beside it: both model and EMA start from them). The optimizer starts fresh
    (with warmup), and the earlier training time is counted into this run's wall time. Returns the provenance
    to record and the schedule those weights were trained on (None: the image DiT's).
    """
    if str(path).endswith(".safetensors"):
        meta = read_metadata(path)  # read as tensors, not a module: the file may predate a new module
        extra, text_path = meta["extra"], Path(path).with_name("video_text_encoder.safetensors")
        weights = {**{f"dit.{k}": v for k, v in load_file(str(path)).items()},
                   **{f"text.{k}": v for k, v in load_file(str(text_path)).items()}}
        state = {"model": weights, "ema": weights, "step": extra.get("steps_done", 0),
                 "elapsed_s": extra.get("wall_time_s", 0.0),
                 "configs": {"dit": meta["config"], "schedule": extra["schedule"]},
                 "args": {"command_line": extra.get("command")}}
    else:
        state = read_checkpoint(path, "video")
    missing = run.model.load_state_dict(state["model"], strict=False).missing_keys
    run.ema.module.load_state_dict(state["ema"], strict=False)
    run.elapsed_s = float(state.get("elapsed_s", 0.0))
    tqdm.write(f"warm start from {path} (step {state['step']}); {len(missing)} tensors new: {missing[:4]}")
    record = {"checkpoint": str(path), "steps": int(state["step"]), "elapsed_s": round(run.elapsed_s, 1),
              "attention": state["configs"]["dit"].get("attention"), "new_tensors": len(missing),
              "command": state["args"].get("command_line")}
    return record, checkpoint_schedule(state, run.args.init_dit)


def draw_odds(clips, circle_weight: float) -> np.ndarray | None:
    """Per bank clip, the probability a training step draws it: circles circle_weight times as likely as the
    other shapes; None (uniform) at 1."""
    if circle_weight == 1.0:
        return None
    weight = np.where(clips.scenes.shape == SHAPES.index("circle"), circle_weight, 1.0)
    return weight / weight.sum()


def _merge(a, b, take_b: np.ndarray):
    """Per clip, b where take_b else a (both ClipBatch of the same length)."""
    from app.world.clips import ClipBatch
    from app.world.scenes import SceneBatch

    pick = lambda x, y: np.where(take_b.reshape(-1, *([1] * (np.ndim(x) - 1))), y, x)  # noqa: E731
    scenes = SceneBatch(**{k: (pick(v, getattr(b.scenes, k)) if isinstance(v, np.ndarray) else v)
                           for k, v in vars(a.scenes).items()})
    return ClipBatch(scenes, pick(a.direction, b.direction), pick(a.speed_px, b.speed_px), a.frames)


def add_parser(sub, common) -> None:
    """The `video` sub-command of app.training.cli; `common` adds the options every trainer has."""
    vid = sub.add_parser("video", help="train the space-time denoiser from the image model (EQ MM3.6)")
    common(vid, "video", lr=2e-4, batch=8)
    vid.set_defaults(out="models/video_denoiser.safetensors", ckpt_dir="runs/video", ema_decay=0.998)
    vid.add_argument("--vae", default="models/vae.safetensors", help="trained VAE weights")
    vid.add_argument("--init-dit", default="models/denoiser.safetensors", help="the image DiT to start from")
    vid.add_argument("--init-text", default="models/text_encoder.safetensors", help="its caption encoder")
    vid.add_argument("--from-scratch", action="store_true", help="random weights instead of the image model's")
    vid.add_argument("--warm-start", default=None,
                     help="a video checkpoint (.pt), or video_denoiser.safetensors, whose weights to start from "
                          "(new modules keep their init)")
    vid.add_argument("--text-out", default=None, help="caption encoder file (default: beside --out)")
    vid.add_argument("--frames", type=int, default=8, help="frames per clip")
    vid.add_argument("--attention", choices=("factorised", "joint"), default="factorised",
                     help="joint space-time attention, or spatial then temporal (see app.nets.video_dit)")
    vid.add_argument("--bank", default="runs/video/bank.pt", help="cache of VAE-encoded clips")
    vid.add_argument("--bank-size", type=int, default=16384, help="clips in the bank")
    vid.add_argument("--bank-seed", type=int, default=BANK_SEED)
    vid.add_argument("--p-reverse", type=float, default=0.5, help="share of clips played backwards")
    vid.add_argument("--p-drop", type=float, default=0.1, help="share of empty captions")
    vid.add_argument("--p-partial", type=float, default=0.3, help="share of partial captions")
    vid.add_argument("--p-start", type=float, default=0.5,
                     help="share of the other captions that name the start: with it, the direction decides every "
                          "frame's place, a far stronger training signal for it than without")
    vid.add_argument("--weighting", choices=("none", "min_snr"), default="min_snr")
    vid.add_argument("--circle-weight", type=float, default=1.0,
                     help="draw clips of circles this many times as often as the other shapes: guided samples drew "
                          "circles as rounded diamonds, which the judge tells apart (app/measure/judge.py)")
    # Where a shape starts and which way it moves is settled in the noisiest steps; min-SNR weighting (v target)
    # gives those steps almost no weight, and a run trained so learned smooth motion in a direction set by the
    # noise, never the caption's. These two options put the weight back.
    vid.add_argument("--high-noise-share", type=float, default=0.0,
                     help="share of training timesteps drawn from the noisier half [T/2, T) instead of [0, T)")
    vid.add_argument("--terminal-signal", type=float, default=None,
                     help="sqrt(abar_T) of the video model's schedule (the image model's is 0.068): rescales the "
                          "image schedule (NoiseSchedule.with_terminal_signal) so x_T holds (almost) no trace of the "
                          "clip and the caption alone must decide where the shape starts and which way it moves; "
                          "the schedule is saved with the weights")
    vid.set_defaults(func=train_video)
