"""Does the video model read the direction in its caption? How much is there to read?

The direction of motion is settled in the noisiest steps, so this measures it there, in the units of the
training loss (mean squared error on the clean latents x0, per element):
  1. the model: its x0 error on bank clips with the right caption against the same caption with the OPPOSITE
     direction (no start named), at each of `--t`. A model that ignores the direction has a gap of 0.
  2. what the data offers: a predictor that sees only the caption (shape, colour, size, direction) and answers
     the mean latents of the training clips with that caption (from the bank's first half), scored on the same
     clips (from its second half): its error with the right caption's mean against the opposite one's, and with
     the mean of all clips. The gap between those is what reading the direction is worth when the noise hides
     everything else; it does not use x_t, so it is a yardstick for the model's gap, not a bound.
Usage: python bench/direction.py [--model-dir models | --checkpoint runs/video/video-last.pt] [--json out.json]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.diffusion.schedule import NoiseSchedule
from app.nets.io import load_module
from app.nets.text import TextEncoder, TextEncoderConfig
from app.nets.vae import VAE, VAEConfig
from app.nets.video_dit import VideoDiT, VideoDiTConfig
from app.training.clip_bank import load_or_build_bank
from app.training.video import BANK_SEED, TextToClip, checkpoint_schedule, training_schedule
from app.world.clips import OPPOSITE, ClipBatch, clip_captions, select
from app.world.scenes import tokenize


def load_model(model_dir: Path, checkpoint: str | None, weights: str = "ema") -> tuple[TextToClip, NoiseSchedule]:
    """The committed video weights, or a training checkpoint's EMA (or raw) weights, with the model's schedule."""
    if checkpoint:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # our own training checkpoint
        model = TextToClip(TextEncoderConfig(**state["configs"]["text"]), VideoDiTConfig(**state["configs"]["dit"]))
        model.load_state_dict(state[weights])
        image_dit = model_dir / "denoiser.safetensors"
        return model.eval(), training_schedule(image_dit, None, checkpoint_schedule(state, image_dit))
    dit, extra = load_module(model_dir / "video_denoiser.safetensors", VideoDiT, VideoDiTConfig)
    text, _ = load_module(model_dir / "video_text_encoder.safetensors", TextEncoder, TextEncoderConfig)
    model = TextToClip(text.config, dit.config)
    model.dit, model.text = dit, text
    return model.eval(), NoiseSchedule.from_config(extra["schedule"])


def opposite(clips: ClipBatch) -> ClipBatch:
    return ClipBatch(clips.scenes, OPPOSITE[clips.direction], clips.speed_px, clips.frames)


@torch.no_grad()
def model_gaps(model: TextToClip, schedule: NoiseSchedule, z0: torch.Tensor, clips: ClipBatch,
               timesteps: list[int], batch: int = 32) -> list[dict]:
    """x0 MSE with the right and the opposite direction in the caption (no start), at each t."""
    keep = {"start": np.zeros(len(clips), dtype=bool)}
    right = torch.from_numpy(tokenize(clip_captions(clips, keep)))
    wrong = torch.from_numpy(tokenize(clip_captions(opposite(clips), keep)))
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))
    rows = []
    for t in timesteps:
        errors = {"right": 0.0, "opposite": 0.0}
        for i in range(0, len(z0), batch):
            part = slice(i, i + batch)
            tt = torch.full((len(z0[part]),), t)
            x_t = schedule.add_noise(z0[part], eps[part], tt)
            for name, tokens in (("right", right), ("opposite", wrong)):
                x0_hat = schedule.x0_from_v(x_t, model(x_t, tt, tokens[part]), tt)
                errors[name] += (x0_hat - z0[part]).pow(2).mean().item() * len(z0[part])
        right_mse, wrong_mse = errors["right"] / len(z0), errors["opposite"] / len(z0)
        rows.append({"t": t, "x0_mse_right": round(right_mse, 4), "x0_mse_opposite": round(wrong_mse, 4),
                     "gap": round(wrong_mse - right_mse, 4)})
    return rows


def caption_only_gap(bank: dict, test: np.ndarray) -> dict:
    """x0 MSE of the per-caption mean latents (first half of the bank) on the test clips (second half)."""
    clips, latents = bank["clips"], bank["latents"]
    s = clips.scenes
    attrs = ((s.shape * 8 + s.colour) * 2 + s.size) * 8  # caption key without the direction
    key = attrs + clips.direction
    train = np.arange(len(key)) < len(key) // 2
    means = {k: latents[torch.from_numpy(train & (key == k))].mean(0) for k in np.unique(key[train])}
    overall = latents[torch.from_numpy(train)].mean(0)
    errors = {"right": [], "opposite": [], "all_clips": []}
    for i in test:
        other = attrs[i] + OPPOSITE[clips.direction[i]]
        if key[i] not in means or other not in means:
            continue
        errors["right"].append((latents[i] - means[key[i]]).pow(2).mean().item())
        errors["opposite"].append((latents[i] - means[other]).pow(2).mean().item())
        errors["all_clips"].append((latents[i] - overall).pow(2).mean().item())
    mse = {name: float(np.mean(v)) for name, v in errors.items()}
    return {"clips": len(errors["right"]), "x0_mse_right": round(mse["right"], 4),
            "x0_mse_opposite": round(mse["opposite"], 4), "x0_mse_mean_of_all_clips": round(mse["all_clips"], 4),
            "gap": round(mse["opposite"] - mse["right"], 4)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default="models", help="committed weights (video and VAE) and the image DiT")
    p.add_argument("--checkpoint", default=None, help="a training checkpoint (.pt) instead of the committed weights")
    p.add_argument("--weights", choices=("ema", "model"), default="ema", help="a checkpoint's EMA or raw weights")
    p.add_argument("--bank", default="runs/video/bank.pt", help="the training bank (built if missing, ~15 min)")
    p.add_argument("--bank-size", type=int, default=16384)
    p.add_argument("--clips", type=int, default=256, help="test clips, from the bank's second half")
    p.add_argument("--t", type=int, nargs="+", default=[999, 990, 900, 700, 500])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = Path(args.model_dir)
    vae, _ = load_module(model_dir / "vae.safetensors", VAE, VAEConfig)
    bank = load_or_build_bank(args.bank, vae, args.bank_size, BANK_SEED, 8, 64)
    n = len(bank["clips"])
    test = np.random.default_rng(0).choice(np.arange(n // 2, n), size=min(args.clips, n - n // 2), replace=False)
    model, schedule = load_model(model_dir, args.checkpoint, args.weights)
    result = {"weights": args.checkpoint or str(model_dir / "video_denoiser.safetensors"),
              "model": model_gaps(model, schedule, bank["latents"][torch.from_numpy(test)],
                                  select(bank["clips"], test), args.t),
              "caption_only_predictor": caption_only_gap(bank, test)}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
