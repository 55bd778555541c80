"""Train the VAE, then the caption-conditioned denoiser: `diffusion-lab train vae|denoiser|video` or `python3 -m app.training.image`.

Data is drawn on the fly, on the training device, from a seeded numpy Generator (app.world.scenes); nothing is
downloaded. Needs only torch, numpy, safetensors and tqdm, so it runs on a bare GPU box.

Files written:
- `vae`: --out (default models/vae.safetensors): the EMA weights, with the per-channel latent shift/scale
  measured on data after training (buffers latent_shift / latent_scale, also copied into the metadata).
- `denoiser`: --out (default models/denoiser.safetensors) holds the DiT and --text-out (default
  text_encoder.safetensors beside it) the caption encoder trained with it; both are EMA weights.
- Every --ckpt-every steps, and at the end: <ckpt-dir>/<kind>-last.pt (model, EMA, optimizer, step, rng
  states) that --resume continues from.
Each final file's metadata records the command line, steps done, wall time, device, torch version, git
commit, the whole recipe, the loss curve and the final validation numbers.

For a time-limited GPU run, --max-minutes stops the loop cleanly (then validates and saves), and
--lr-by-time makes the cosine decay follow that time budget, so a run cut short still ends at a low lr.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import shlex
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from app.nets.dit import DIT_SIZES, DiT, DiTConfig
from app.nets.io import load_module, save_module
from app.nets.text import TEXT_SIZES, TextEncoder, TextEncoderConfig
from app.nets.vae import VAE, VAE_SIZES, VAEConfig, kl_divergence

REPO_ROOT = Path(__file__).resolve().parents[2]
VAL_SEED = 1_000_003  # held-out scenes: no training run draws from this seed
STATS_SEED = 1_000_033  # scenes the latent shift/scale are measured on

# ---------------------------------------------------------------------------------------------
# Run plumbing: device, schedule, EMA, checkpoints
# ---------------------------------------------------------------------------------------------


def pick_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """HEAD of the repository this code runs from, or 'unknown'."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lr_at(step: int, total: int, peak: float, warmup: int, min_ratio: float = 0.1,
          time_fraction: float = 0.0) -> float:
    """Linear warmup to `peak`, then cosine decay to min_ratio * peak at `total`.

    The decay follows whichever is further along: the steps, or `time_fraction` of a time budget.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW; matrices decay, biases, norms and 1-D vectors do not (nanoGPT's split)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), fused=device.type == "cuda")


class EMA:
    """Exponential moving average of a module's weights; its decay ramps up as (1+n)/(10+n)."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_p = list(self.module.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in module.parameters()], 1.0 - d)
        for e, b in zip(self.module.buffers(), module.buffers()):
            e.copy_(b)


class Run:
    """Everything a training loop mutates, and what a checkpoint holds."""

    def __init__(self, args: argparse.Namespace, device: torch.device, model: nn.Module, configs: dict):
        self.args, self.device, self.model, self.configs = args, device, model, configs
        self.ema = EMA(model, args.ema_decay)
        self.opt = make_optimizer(model, args.lr, args.weight_decay, device)
        self.rng = np.random.default_rng(args.seed)  # scenes and captions
        self.cpu_gen = torch.Generator().manual_seed(args.seed)  # timesteps (kept on the CPU: no device sync)
        self.gen = torch.Generator(device=device).manual_seed(args.seed + 1)  # noise, on the device
        self.step = 0
        self.elapsed_s = 0.0  # training time of earlier invocations (resume)

    def checkpoint_path(self) -> Path:
        return Path(self.args.ckpt_dir) / f"{self.args.kind}-last.pt"

    def save_checkpoint(self) -> Path:
        path = self.checkpoint_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "kind": self.args.kind, "step": self.step, "elapsed_s": self.elapsed_s, "configs": self.configs,
            "model": self.model.state_dict(), "ema": self.ema.module.state_dict(), "opt": self.opt.state_dict(),
            "np_rng": self.rng.bit_generator.state, "cpu_gen": self.cpu_gen.get_state(),
            "gen": self.gen.get_state(), "args": {k: v for k, v in vars(self.args).items() if k != "func"},
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        if self.args.keep_checkpoints:
            shutil.copyfile(path, path.with_name(f"{self.args.kind}-step{self.step:07d}.pt"))
        return path

    def load_checkpoint(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.module.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.rng.bit_generator.state = state["np_rng"]
        self.cpu_gen.set_state(state["cpu_gen"])
        self.gen.set_state(state["gen"].to("cpu"))
        self.step, self.elapsed_s = int(state["step"]), float(state.get("elapsed_s", 0.0))


def read_checkpoint(path: str | Path, kind: str) -> dict:
    """A checkpoint written by Run.save_checkpoint, checked to be of this kind."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: it holds rng states
    if state.get("kind") != kind:
        raise SystemExit(f"checkpoint {path} is a {state.get('kind')!r} checkpoint, not {kind!r}")
    return state


def setup_backend(device: torch.device) -> None:
    """TF32 matmuls and cuDNN autotuning on CUDA."""
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device):
    """bf16 autocast on CUDA, plain fp32 elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def fit(run: Run, train_step, validate) -> dict:
    """The shared loop: lr schedule, clipping, EMA, progress, validation, checkpoints, time guard."""
    args, model, opt = run.args, run.model, run.opt
    warmup = min(args.warmup, max(1, args.steps // 5))
    params = [p for p in model.parameters() if p.requires_grad]
    start, began = run.step, time.time()
    t0 = began  # start of the time not yet added to run.elapsed_s
    deadline = began + 60 * args.max_minutes if args.max_minutes > 0 else math.inf
    if args.lr_by_time and not math.isfinite(deadline):
        raise SystemExit("--lr-by-time needs --max-minutes")
    interactive = sys.stderr.isatty()
    bar = tqdm(total=args.steps, initial=start, desc=args.kind, disable=args.no_progress,
               mininterval=0.5 if interactive else 10.0, dynamic_ncols=True)
    running, seen, curve = torch.zeros((), device=run.device), 0, []
    stopped_early = False
    model.train()
    while run.step < args.steps:
        if time.time() >= deadline:
            stopped_early = True
            tqdm.write(f"--max-minutes {args.max_minutes} reached at step {run.step}: stopping and saving")
            break
        time_fraction = (time.time() - began) / (deadline - began) if args.lr_by_time else 0.0
        lr = lr_at(run.step, args.steps, args.lr, warmup, time_fraction=time_fraction)
        for group in opt.param_groups:
            group["lr"] = lr
        with autocast(run.device):
            loss = train_step()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, args.grad_clip)
        opt.step()
        run.ema.update(model, run.step)
        run.step += 1
        bar.update(1)
        running += loss.detach().float()
        seen += 1
        if run.step % args.log_every == 0 or run.step == args.steps:
            curve.append([run.step, round(running.item() / seen, 6)])
            bar.set_postfix(loss=f"{curve[-1][1]:.4f}", lr=f"{lr:.2e}")
            running.zero_()
            seen = 0
        if args.val_every > 0 and run.step % args.val_every == 0 and run.step < args.steps:
            val = validate(run.ema.module, final=False)
            tqdm.write(f"step {run.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in val.items()))
        if args.ckpt_every > 0 and run.step % args.ckpt_every == 0:
            run.elapsed_s += time.time() - t0
            t0 = time.time()
            run.save_checkpoint()
    bar.close()
    if seen:
        curve.append([run.step, round(running.item() / seen, 6)])
    run.elapsed_s += time.time() - t0
    final = validate(run.ema.module, final=True)
    tqdm.write(f"final (step {run.step}): " + ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
    run.save_checkpoint()
    return {"validation": final, "steps_done": run.step, "steps_this_run": run.step - start,
            "stopped_early": stopped_early, "loss_curve": curve}


def provenance(run: Run, summary: dict) -> dict:
    """What a weights file records about the run that made it."""
    args = run.args
    return {
        "command": args.command_line,
        "steps_done": summary["steps_done"],
        "steps_planned": args.steps,
        "stopped_early": summary["stopped_early"],
        "wall_time_s": round(run.elapsed_s, 1),
        "device": device_name(run.device),
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "validation": summary["validation"],
        "loss_curve": summary["loss_curve"],  # [step, mean training loss since the last point]
        "recipe": {k: v for k, v in vars(args).items() if k not in ("command_line", "func")},
    }


# ---------------------------------------------------------------------------------------------
# The VAE
# ---------------------------------------------------------------------------------------------


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Finite differences along width and height (B,C,H,W-1), (B,C,H-1,W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def vae_loss(x_hat: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
             kl_weight: float, edge_weight: float) -> torch.Tensor:
    """L1 reconstruction + edge_weight * L1 on image gradients (keeps corners sharp) + kl_weight * KL."""
    x_hat = x_hat.float()
    loss = F.l1_loss(x_hat, x)
    if edge_weight > 0:
        (gx_hat, gy_hat), (gx, gy) = image_gradients(x_hat), image_gradients(x)
        loss = loss + edge_weight * (F.l1_loss(gx_hat, gx) + F.l1_loss(gy_hat, gy))
    return loss + kl_weight * kl_divergence(mean.float(), logvar.float())


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [-1, 1] (peak-to-peak 2): (B,)."""
    mse = (x_hat.float().clamp(-1, 1) - x.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))


def held_out_scenes(n: int, resolution: int, seed: int = VAL_SEED):
    """The fixed held-out scenes (the same for every run)."""
    from app.world.scenes import sample_scenes

    return sample_scenes(n, np.random.default_rng(seed), resolution)


@torch.no_grad()
def encode_in_chunks(vae: VAE, x: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Posterior means of a big batch, in chunks."""
    return torch.cat([vae.encode(x[i:i + chunk])[0] for i in range(0, len(x), chunk)])


def vae_config_from_args(args: argparse.Namespace) -> VAEConfig:
    """The size preset, with --latent-channels and --downsample-factor applied."""
    base = VAE_SIZES[args.size]()
    levels = int(round(math.log2(args.downsample_factor))) + 1
    if 2 ** (levels - 1) != args.downsample_factor:
        raise SystemExit("--downsample-factor must be a power of two")
    mult = (tuple(base.channel_mult) + (base.channel_mult[-1],) * levels)[:levels]
    return VAE_SIZES[args.size](channel_mult=mult, latent_channels=args.latent_channels)


def train_vae(args: argparse.Namespace) -> Path:
    """Train the autoencoder; measure the latent statistics; save the EMA weights."""
    from app.measure.judge import agreement, judge
    from app.world.scenes import render, sample_scenes

    device = pick_device(args.device)
    setup_backend(device)
    torch.manual_seed(args.seed)
    resumed = read_checkpoint(args.resume, "vae") if args.resume else None
    config = VAEConfig(**resumed["configs"]["vae"]) if resumed else vae_config_from_args(args)
    model = VAE(config).to(device)
    run = Run(args, device, model, {"vae": config.to_dict()})
    if resumed:
        run.load_checkpoint(resumed)
    forward = torch.compile(model) if args.compile else model

    val_scenes = held_out_scenes(args.val_size, args.resolution)
    val_x = render(val_scenes, device)  # (N, 3, H, W)

    def train_step() -> torch.Tensor:
        x = render(sample_scenes(args.batch, run.rng, args.resolution), device)  # (B, 3, H, W)
        x_hat, mean, logvar = forward(x, generator=run.gen)
        return vae_loss(x_hat, x, mean, logvar, args.kl_weight, args.edge_weight)

    @torch.no_grad()
    def validate(vae: VAE, final: bool) -> dict:
        recon = torch.cat([vae.decode(vae.encode(val_x[i:i + 256])[0]).clamp(-1, 1)
                           for i in range(0, len(val_x), 256)])
        p = psnr(recon, val_x)
        out = {"psnr_db": p.mean().item(), "psnr_db_p05": p.quantile(0.05).item(),
               "l1": (recon - val_x).abs().mean().item()}
        if final:
            out["judge_all"] = agreement(judge(recon), val_scenes)["all"]
            out["judge_all_originals"] = agreement(judge(val_x), val_scenes)["all"]
        return out

    summary = fit(run, train_step, validate)
    vae = run.ema.module
    stats_x = render(held_out_scenes(args.stats_size, args.resolution, STATS_SEED), device)
    vae.set_latent_stats(encode_in_chunks(vae, stats_x))
    extra = provenance(run, summary) | {
        "latent_shift": vae.latent_shift.tolist(), "latent_scale": vae.latent_scale.tolist(),
        "downsample_factor": config.downsample_factor, "resolution": args.resolution,
        "param_count": sum(p.numel() for p in vae.parameters()),
    }
    path = save_module(args.out, vae, config, extra)
    tqdm.write(f"wrote {path} (latent scale {[round(s, 3) for s in extra['latent_scale']]})")
    return path


# ---------------------------------------------------------------------------------------------
# The denoiser (+ caption encoder)
# ---------------------------------------------------------------------------------------------


class TextToLatent(nn.Module):
    """The jointly trained pair: caption encoder and DiT (one optimizer, one EMA)."""

    def __init__(self, text: TextEncoderConfig, dit: DiTConfig):
        super().__init__()
        self.text = TextEncoder(text)
        self.dit = DiT(dit)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        context, mask = self.text(tokens)  # (B, L, D), (B, L)
        return self.dit(x_t, t, context, mask)  # (B, C, h, w)


def denoiser_configs(args: argparse.Namespace, vae_config: VAEConfig) -> tuple[TextEncoderConfig, DiTConfig]:
    """The size presets, fitted to the vocabulary and the VAE's latent shape."""
    from app.world.scenes import MAX_TOKENS, VOCAB

    text = TEXT_SIZES[args.size](vocab_size=len(VOCAB), max_tokens=MAX_TOKENS)
    dit = DIT_SIZES[args.size](latent_size=args.resolution // vae_config.downsample_factor,
                               latent_channels=vae_config.latent_channels, context_dim=text.width)
    return text, dit


def default_text_out(out: str | Path) -> Path:
    """text_encoder.safetensors beside the denoiser file."""
    return Path(out).with_name("text_encoder.safetensors")


def train_denoiser(args: argparse.Namespace) -> tuple[Path, Path]:
    """Train caption encoder + DiT with v-prediction (EQ MM3.2) on frozen-VAE latents (EQ MM3.3)."""
    from app.diffusion.schedule import NoiseSchedule, sample_timesteps, training_loss
    from app.world.scenes import VOCAB, random_captions, render, sample_scenes, tokenize

    device = pick_device(args.device)
    setup_backend(device)
    torch.manual_seed(args.seed)
    vae, vae_extra = load_module(args.vae, VAE, VAEConfig, device)
    vae.requires_grad_(False)
    resumed = read_checkpoint(args.resume, "denoiser") if args.resume else None
    if resumed:
        text_cfg = TextEncoderConfig(**resumed["configs"]["text"])
        dit_cfg = DiTConfig(**resumed["configs"]["dit"])
    else:
        text_cfg, dit_cfg = denoiser_configs(args, vae.config)
    model = TextToLatent(text_cfg, dit_cfg).to(device)
    run = Run(args, device, model, {"text": text_cfg.to_dict(), "dit": dit_cfg.to_dict()})
    if resumed:
        run.load_checkpoint(resumed)
    schedule = NoiseSchedule.make(kind=args.schedule, T=args.timesteps)
    weighting = None if args.weighting == "none" else args.weighting
    forward = torch.compile(model) if args.compile else model

    @torch.no_grad()
    def latents(scenes) -> torch.Tensor:
        # The posterior mean, normalised: the VAE's KL weight is tiny, so a sample would add only jitter.
        # In fp32 even under bf16 autocast: the targets should not carry bf16 rounding.
        with torch.autocast(device_type=device.type, enabled=False):
            return vae.encode_for_diffusion(render(scenes, device))  # (B, C, h, w)

    def train_step() -> torch.Tensor:
        scenes = sample_scenes(args.batch, run.rng, args.resolution)
        captions = random_captions(scenes, run.rng, p_partial=args.p_partial, p_drop=args.p_drop)
        tokens = torch.from_numpy(tokenize(captions)).to(device, non_blocking=True)  # (B, L)
        z0 = latents(scenes)
        t = sample_timesteps(args.batch, schedule.T, run.cpu_gen)  # (B,) on the CPU
        eps = torch.randn(z0.shape, generator=run.gen, device=device)

        def predict(x_t: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
            return forward(x_t, tt.to(device, non_blocking=True), tokens).float()

        return training_loss(predict, z0, t, eps, schedule, prediction="v", weighting=weighting)

    # Held-out loss: fixed scenes, captions, timesteps spread evenly over [0, T) and noise.
    val_rng = np.random.default_rng(VAL_SEED)
    val_scenes = held_out_scenes(args.val_size, args.resolution)
    val_captions = random_captions(val_scenes, val_rng, args.p_partial, args.p_drop)
    val_tokens = torch.from_numpy(tokenize(val_captions)).to(device)  # (N, L)
    val_z0 = vae.normalize(encode_in_chunks(vae, render(val_scenes, device)))  # (N, C, h, w)
    val_t = torch.linspace(0, schedule.T - 1, len(val_z0)).round().long()
    val_eps = torch.randn(val_z0.shape, generator=torch.Generator().manual_seed(VAL_SEED)).to(device)

    @torch.no_grad()
    def validate(ema: TextToLatent, final: bool) -> dict:
        def predict(x_t, tt):
            return ema(x_t, tt.to(device), val_tokens).float()

        return {"val_loss": training_loss(predict, val_z0, val_t, val_eps, schedule, prediction="v").item()}

    summary = fit(run, train_step, validate)
    ema = run.ema.module
    text_out = Path(args.text_out) if args.text_out else default_text_out(args.out)
    shared = provenance(run, summary)
    dit_extra = shared | {
        "prediction": "v", "schedule": schedule.config(), "weighting": args.weighting,
        "vae": str(args.vae), "vae_git_commit": vae_extra.get("git_commit"), "text_encoder": text_out.name,
        "resolution": args.resolution, "param_count": sum(p.numel() for p in ema.dit.parameters()),
    }
    text_extra = shared | {
        "vocab": list(VOCAB), "denoiser": Path(args.out).name,
        "param_count": sum(p.numel() for p in ema.text.parameters()),
    }
    path = save_module(args.out, ema.dit, dit_cfg, dit_extra)
    save_module(text_out, ema.text, text_cfg, text_extra)
    tqdm.write(f"wrote {path} and {text_out}")
    return path, text_out


# ---------------------------------------------------------------------------------------------
# Command line (shared by `diffusion-lab train ...` and `python3 -m app.training.image ...`)
# ---------------------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, kind: str, lr: float, batch: int) -> None:
    p.add_argument("--steps", type=int, default=5000, help="optimizer steps in total (a resumed run continues to it)")
    p.add_argument("--batch", type=int, default=batch, help="scenes per step")
    p.add_argument("--lr", type=float, default=lr, help="peak learning rate (AdamW)")
    p.add_argument("--warmup", type=int, default=200, help="linear warmup steps (at most a fifth of --steps)")
    p.add_argument("--weight-decay", type=float, default=0.0 if kind == "vae" else 0.01)
    p.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: off)")
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--out", default=f"models/{kind}.safetensors", help="final weights file (EMA weights)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--size", choices=("tiny", "small", "base"), default="small", help="model size preset")
    p.add_argument("--resolution", type=int, default=64, help="scene side in pixels")
    p.add_argument("--resume", default=None, help="checkpoint (.pt) to continue from")
    p.add_argument("--ckpt-dir", default=f"runs/{kind}", help=f"where {kind}-last.pt is written")
    p.add_argument("--ckpt-every", type=int, default=1000, help="checkpoint period in steps (0: only at the end)")
    p.add_argument("--keep-checkpoints", action="store_true", help="also keep <kind>-step<N>.pt at each checkpoint")
    p.add_argument("--val-every", type=int, default=500, help="validation period in steps (0: only at the end)")
    p.add_argument("--val-size", type=int, default=512, help="held-out scenes")
    p.add_argument("--log-every", type=int, default=25, help="progress-bar loss period in steps")
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop cleanly and save after this long (0: no limit)")
    p.add_argument("--lr-by-time", action="store_true",
                   help="decay the learning rate over --max-minutes when that ends the run before --steps")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser(prog: str = "python3 -m app.training.image") -> argparse.ArgumentParser:
    """`vae`, `denoiser` and `video` (app.training.video) sub-commands."""
    parser = argparse.ArgumentParser(prog=prog, description="Train the VAE, then the caption-conditioned denoiser.")
    sub = parser.add_subparsers(dest="kind", required=True)

    vae = sub.add_parser("vae", help="train the autoencoder (EQ MM3.3)")
    _common(vae, "vae", lr=5e-4, batch=64)
    vae.add_argument("--latent-channels", type=int, default=4, help="c_z")
    vae.add_argument("--downsample-factor", type=int, default=8, help="f (a power of two)")
    vae.add_argument("--kl-weight", type=float, default=1e-5, help="weight of the per-element KL term")
    vae.add_argument("--edge-weight", type=float, default=0.5, help="weight of the image-gradient L1 term")
    vae.add_argument("--stats-size", type=int, default=2048, help="scenes the latent shift/scale are measured on")
    vae.set_defaults(func=train_vae)

    den = sub.add_parser("denoiser", help="train caption encoder + DiT on the frozen VAE's latents (EQ MM3.2)")
    _common(den, "denoiser", lr=3e-4, batch=128)
    den.add_argument("--vae", default="models/vae.safetensors", help="trained VAE weights")
    den.add_argument("--text-out", default=None,
                     help="caption encoder file (default: text_encoder.safetensors beside --out)")
    den.add_argument("--p-drop", type=float, default=0.1, help="share of empty captions (for classifier-free guidance)")
    den.add_argument("--p-partial", type=float, default=0.3, help="share of partial captions")
    den.add_argument("--schedule", default="scaled_linear", help="noise schedule kind")
    den.add_argument("--timesteps", type=int, default=1000, help="T")
    den.add_argument("--weighting", choices=("none", "min_snr"), default="min_snr", help="loss weighting over t")
    den.set_defaults(func=train_denoiser)

    from app.training.video import add_parser as add_video_parser  # imports this module: only once it is loaded

    add_video_parser(sub, _common)
    return parser


def main(argv: list[str] | None = None, prog: str = "python3 -m app.training.image") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    args.command_line = shlex.join([*prog.split(), *argv])
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
