"""Train the VAE, then the caption-conditioned denoiser on its latents: the `vae` and `denoiser` sub-commands.

Data is drawn on the fly, on the training device, from a seeded numpy Generator (app.world.scenes); nothing is
downloaded. Files written (EMA weights, with the provenance of app.training.loop):
- `vae`: --out (default models/vae.safetensors), with the per-channel latent shift/scale measured on data after
  training (buffers latent_shift / latent_scale, also copied into the metadata).
- `denoiser`: --out (default models/denoiser.safetensors) holds the DiT and --text-out (default
  text_encoder.safetensors beside it) the caption encoder trained with it.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from tqdm import tqdm

from app.measure.image import psnr
from app.nets.dit import DIT_SIZES, DiT, DiTConfig
from app.nets.io import load_module, read_metadata, save_module
from app.nets.text import TEXT_SIZES, TextEncoder, TextEncoderConfig
from app.nets.vae import VAE, VAE_SIZES, VAEConfig, kl_divergence
from app.training.loop import Run, fit, provenance, read_checkpoint, setup_backend
from app.world.compose import PairBatch
from app.world.held_out import VAL_SEED, held_out_scenes
from app.world.scenes import SceneBatch

STATS_SEED = 1_000_033  # scenes the latent shift/scale are measured on

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


def train_vae(args: argparse.Namespace, device: torch.device) -> Path:
    """Train the autoencoder; measure the latent statistics; save the EMA weights."""
    from app.measure.judge import agreement, judge
    from app.world.scenes import render, sample_scenes

    setup_backend(device)
    torch.manual_seed(args.seed)
    resumed = read_checkpoint(args.resume, "vae") if args.resume else None
    config = VAEConfig(**resumed["configs"]["vae"]) if resumed else vae_config_from_args(args)
    model = VAE(config).to(device)
    run = Run(args, device, model, {"vae": config.to_dict()})
    if resumed:
        run.load_checkpoint(resumed)
    forward = torch.compile(run.parallel(model)) if args.compile else run.parallel(model)

    val_scenes = held_out_scenes(args.val_size, args.resolution)
    val_x = render(val_scenes, device)  # (N, 3, H, W)

    def train_step() -> torch.Tensor:
        x = render(run.shard(sample_scenes(args.batch, run.rng, args.resolution)), device)  # (B, 3, H, W)
        x_hat, mean, logvar = forward(x, generator=run.rank_gen)
        return vae_loss(x_hat, x, mean, logvar, args.kl_weight, args.edge_weight)

    @torch.no_grad()
    def validate(vae: VAE, final: bool) -> dict:
        recon = vae.reconstruct(val_x)
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


def near_edges(x: torch.Tensor, reach: int = 2) -> torch.Tensor:
    """(B,1,H,W) 1 within `reach` pixels of a colour change, else 0: where a shape's outline is drawn."""
    gx, gy = image_gradients(x)
    edge = torch.zeros_like(x[:, :1])
    edge[..., :, 1:] += gx.abs().amax(1, keepdim=True)
    edge[..., 1:, :] += gy.abs().amax(1, keepdim=True)
    return F.max_pool2d((edge > 1e-3).float(), 2 * reach + 1, stride=1, padding=reach)


def clip_frames(n: int, rng: np.random.Generator, resolution: int, device: torch.device) -> torch.Tensor:
    """n frames drawn from n random clips (one random frame each): shapes anywhere along their paths."""
    from app.world.clips import DEFAULT_FRAMES, render_clips, sample_clips

    frames = render_clips(sample_clips(n, rng, resolution=resolution), device)  # (n, F, 3, H, W)
    return frames[torch.arange(n), torch.from_numpy(rng.integers(0, DEFAULT_FRAMES, n))]


def train_decoder(args: argparse.Namespace, device: torch.device) -> Path:
    """Fine-tune the decoder of trained VAE weights on their frozen encoder's posterior means.

    The encoder and the latent shift/scale do not change, so every denoiser trained on these latents stays valid;
    only how latents are drawn as pixels improves. Batches mix still scenes and frames of moving clips, and the
    L1 terms weigh pixels near an outline `--outline-weight` times more (a small circle and a rounded square differ
    in a few outline pixels, which a plain mean over 4,096 pixels hardly sees).
    """
    from app.measure.judge import agreement, judge
    from app.measure.pair_judge import judge_pairs, pair_agreement
    from app.world.clips import render_clips, sample_clips
    from app.world.compose import render_pairs, sample_pairs
    from app.world.scenes import SHAPES, render, sample_scenes

    setup_backend(device)
    torch.manual_seed(args.seed)
    vae, init_extra = load_module(args.init, VAE, VAEConfig, device)
    vae.encoder.requires_grad_(False)
    run = Run(args, device, vae, {"vae": vae.config.to_dict()})
    if args.resume:
        run.load_checkpoint(read_checkpoint(args.resume, "decoder"))
    decoder = run.parallel(vae.decoder)

    @torch.no_grad()
    def latents(x: torch.Tensor) -> torch.Tensor:
        return vae.encode(x)[0]

    def train_step() -> torch.Tensor:
        n_clip = int(round(args.batch * args.clip_share))
        n_pair = int(round(args.batch * args.pair_share))
        x = torch.cat([render(sample_scenes(args.batch - n_clip - n_pair, run.rng, args.resolution), device),
                       clip_frames(n_clip, run.rng, args.resolution, device),
                       render_pairs(sample_pairs(n_pair, run.rng, args.resolution), device)])
        x = run.shard(x)
        vae.encoder.eval()
        z = latents(x)
        if args.latent_noise > 0:  # a denoiser's latents are never exact: learn to draw near-misses as clean shapes
            sigma = args.latent_noise * torch.rand(len(z), 1, 1, 1, generator=run.rank_gen, device=device)
            z = z + sigma / vae.latent_scale.view(1, -1, 1, 1) * torch.randn(z.shape, generator=run.rank_gen,
                                                                             device=device)
        x_hat = decoder(z).float()
        weight = 1 + args.outline_weight * near_edges(x)
        loss = (weight * (x_hat - x).abs()).mean() / weight.mean()
        (gx_hat, gy_hat), (gx, gy) = image_gradients(x_hat), image_gradients(x)
        return loss + args.edge_weight * (F.l1_loss(gx_hat, gx) + F.l1_loss(gy_hat, gy))

    val_scenes = held_out_scenes(args.val_size, args.resolution)
    val_x = render(val_scenes, device)
    val_clips = sample_clips(args.val_size, np.random.default_rng(VAL_SEED), resolution=args.resolution)
    val_circles = render_clips(val_clips, device)[val_clips.scenes.shape == SHAPES.index("circle")].flatten(0, 1)
    val_pairs = sample_pairs(args.val_size, np.random.default_rng(VAL_SEED), args.resolution)
    val_pair_x = render_pairs(val_pairs, device)

    @torch.no_grad()
    def validate(model: VAE, final: bool) -> dict:
        recon = model.reconstruct(val_x)
        circles = [v.shape == "circle" for v in judge(model.reconstruct(val_circles))]
        pair_recon = model.reconstruct(val_pair_x)
        return {"psnr_db": psnr(recon, val_x).mean().item(), "judge_all": agreement(judge(recon), val_scenes)["all"],
                "moving_circle_frames_round": float(np.mean(circles)),
                "pair_psnr_db": psnr(pair_recon, val_pair_x).mean().item(),
                "pair_judge_all": pair_agreement(judge_pairs(pair_recon), val_pairs)["all"]}

    summary = fit(run, train_step, validate)
    out = run.ema.module
    extra = provenance(run, summary) | {
        "init": str(args.init), "init_git_commit": init_extra.get("git_commit"),
        "init_training": {k: init_extra.get(k) for k in ("command", "steps_done", "wall_time_s", "device")},
        "latent_shift": out.latent_shift.tolist(), "latent_scale": out.latent_scale.tolist(),
        "downsample_factor": out.config.downsample_factor, "resolution": args.resolution,
        "param_count": sum(p.numel() for p in out.parameters()),
    }
    path = save_module(args.out, out, out.config, extra)
    tqdm.write(f"wrote {path}")
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


BANK_SEED_OFFSET = 7_919  # the bank's scenes come from their own stream, not the training rng's


@dataclass
class LatentBank:
    """Scenes encoded once by the frozen VAE: a denoiser run draws from them instead of encoding every batch
    (the encoder is about 40% of a CPU step). Latents are (N, C, h, w): the one-shape scenes, then the pairs."""

    scenes: SceneBatch
    pairs: PairBatch
    z: torch.Tensor

    def sample(self, n: int, rng: np.random.Generator) -> tuple[SceneBatch, PairBatch, torch.Tensor]:
        """n entries drawn uniformly (with replacement), one-shape ones first as draw() orders them."""
        index = np.sort(rng.integers(0, len(self.z), n))
        singles = index[index < len(self.scenes)]
        doubles = index[index >= len(self.scenes)] - len(self.scenes)
        return self.scenes.take(singles), self.pairs.take(doubles), self.z[torch.from_numpy(index)]


def latent_bank(scenes: SceneBatch, pairs: PairBatch, encode, chunk: int = 256) -> LatentBank:
    """Encode the scenes and pairs in chunks with encode(scenes, pairs) -> latents."""
    started = time.time()
    none_s, none_p = scenes.take(slice(0, 0)), pairs.take(slice(0, 0))
    z = torch.cat([encode(scenes.take(slice(i, i + chunk)), none_p) for i in range(0, len(scenes), chunk)]
                  + [encode(none_s, pairs.take(slice(i, i + chunk))) for i in range(0, len(pairs), chunk)])
    tqdm.write(f"latent bank: {len(scenes)} one-shape and {len(pairs)} two-shape scenes encoded in "
               f"{time.time() - started:.0f} s")
    return LatentBank(scenes, pairs, z)


def warm_start_denoiser(run: Run, path: str) -> dict:
    """Start model and EMA from committed image weights (the DiT file, its caption encoder beside it).

    The vocabulary only ever grows at its end (app.world.scenes.VOCAB), so the earlier token embedding fills the
    first rows and the words it never saw keep their fresh init. The optimizer starts fresh (with warmup); the
    earlier training time is recorded, not added to this run's. Returns the provenance to record.
    """
    meta = read_metadata(path)
    extra = meta["extra"]
    text_path = Path(path).with_name(extra.get("text_encoder", "text_encoder.safetensors"))
    weights = {**{f"dit.{k}": v for k, v in load_file(str(path)).items()},
               **{f"text.{k}": v for k, v in load_file(str(text_path)).items()}}
    own = run.model.state_dict()
    name = "text.token_embed.weight"
    grown = own[name].clone()
    grown[: len(weights[name])] = weights[name]
    weights[name] = grown
    run.model.load_state_dict(weights, strict=True)
    run.ema.module.load_state_dict(weights, strict=True)
    tqdm.write(f"warm start from {path} (step {extra.get('steps_done')}); "
               f"{len(grown) - len(load_file(str(text_path))['token_embed.weight'])} new token rows")
    return {"weights": str(path), "steps": extra.get("steps_done"), "wall_time_s": extra.get("wall_time_s"),
            "device": extra.get("device"), "command": extra.get("command")}


def default_text_out(out: str | Path) -> Path:
    """text_encoder.safetensors beside the denoiser file."""
    return Path(out).with_name("text_encoder.safetensors")


def train_denoiser(args: argparse.Namespace, device: torch.device) -> tuple[Path, Path]:
    """Train caption encoder + DiT with v-prediction (EQ MM3.2) on frozen-VAE latents (EQ MM3.3)."""
    from app.diffusion.schedule import NoiseSchedule, sample_timesteps, training_loss
    from app.world.compose import pair_captions, render_pairs, sample_pairs
    from app.world.scenes import VOCAB, random_captions, render, sample_scenes, tokenize

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
    warm = warm_start_denoiser(run, args.warm_start) if args.warm_start and not resumed else None
    schedule = NoiseSchedule.make(kind=args.schedule, T=args.timesteps)
    weighting = None if args.weighting == "none" else args.weighting
    forward = torch.compile(run.parallel(model)) if args.compile else run.parallel(model)

    @torch.no_grad()
    def latents(x: torch.Tensor) -> torch.Tensor:
        # The posterior mean, normalised: the VAE's KL weight is tiny, so a sample would add only jitter.
        # In fp32 even under bf16 autocast: the targets should not carry bf16 rounding.
        with torch.autocast(device_type=device.type, enabled=False):
            return vae.encode_for_diffusion(x)  # (B, C, h, w)

    def draw(n: int, rng: np.random.Generator) -> tuple[SceneBatch, PairBatch]:
        """n training scenes: one-shape ones, and --pair-share of two-shape ones."""
        n_pair = int(round(n * args.pair_share))
        return sample_scenes(n - n_pair, rng, args.resolution), sample_pairs(n_pair, rng, args.resolution)

    def captions_of(scenes: SceneBatch, pairs: PairBatch, rng: np.random.Generator) -> list[str]:
        return (random_captions(scenes, rng, p_partial=args.p_partial, p_drop=args.p_drop)
                + pair_captions(pairs, rng, p_partial=args.p_partial, p_drop=args.p_drop))

    def encode(scenes: SceneBatch, pairs: PairBatch) -> torch.Tensor:
        parts = [latents(render(scenes, device))] if len(scenes) else []
        return torch.cat(parts + ([latents(render_pairs(pairs, device))] if len(pairs) else []))

    bank = latent_bank(*draw(args.bank, np.random.default_rng(args.seed + BANK_SEED_OFFSET)), encode) \
        if args.bank else None

    def train_step() -> torch.Tensor:
        if bank is None:
            scenes, pairs = draw(args.batch, run.rng)
            z0 = encode(scenes, pairs)  # the whole batch on every rank (the bank avoids it)
        else:  # the bank's own share of pairs; fresh captions, timesteps and noise every time
            scenes, pairs, z0 = bank.sample(args.batch, run.rng)
        captions = captions_of(scenes, pairs, run.rng)
        z0, captions = run.shard(z0), run.shard(captions)  # this rank's part (all of it alone)
        tokens = torch.from_numpy(tokenize(captions)).to(device, non_blocking=True)  # (B, L)
        t = run.shard(sample_timesteps(args.batch, schedule.T, run.cpu_gen))  # (B,) on the CPU
        eps = run.shard(torch.randn((args.batch, *z0.shape[1:]), generator=run.gen, device=device))

        def predict(x_t: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
            return forward(x_t, tt.to(device, non_blocking=True), tokens).float()

        return training_loss(predict, z0, t, eps, schedule, prediction="v", weighting=weighting)

    # Held-out loss: fixed scenes, captions, timesteps spread evenly over [0, T) and noise; for pairs too when
    # the run trains on them.
    held_out = {"": (held_out_scenes(args.val_size, args.resolution), random_captions, render)}
    if args.pair_share > 0:
        held_out["pairs_"] = (sample_pairs(args.val_size, np.random.default_rng(VAL_SEED), args.resolution),
                              pair_captions, render_pairs)
    val_sets = {}
    for name, (scenes, captioner, drawer) in held_out.items():
        captions = captioner(scenes, np.random.default_rng(VAL_SEED), args.p_partial, args.p_drop)
        z0 = vae.normalize(encode_in_chunks(vae, drawer(scenes, device)))  # (N, C, h, w)
        val_sets[name] = (torch.from_numpy(tokenize(captions)).to(device), z0,
                          torch.linspace(0, schedule.T - 1, len(z0)).round().long(),
                          torch.randn(z0.shape, generator=torch.Generator().manual_seed(VAL_SEED)).to(device))

    @torch.no_grad()
    def validate(ema: TextToLatent, final: bool) -> dict:
        out = {}
        for name, (tokens, z0, t, eps) in val_sets.items():
            def predict(x_t, tt, tokens=tokens):
                return ema(x_t, tt.to(device), tokens).float()

            out[f"{name}val_loss"] = training_loss(predict, z0, t, eps, schedule, prediction="v").item()
        return out

    summary = fit(run, train_step, validate)
    ema = run.ema.module
    text_out = Path(args.text_out) if args.text_out else default_text_out(args.out)
    shared = provenance(run, summary)
    dit_extra = shared | {
        "prediction": "v", "schedule": schedule.config(), "weighting": args.weighting,
        "vae": str(args.vae), "vae_git_commit": vae_extra.get("git_commit"), "text_encoder": text_out.name,
        "resolution": args.resolution, "param_count": sum(p.numel() for p in ema.dit.parameters()),
        "pair_share": args.pair_share, "bank": args.bank, "warm_start": warm,
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
# Their sub-commands
# ---------------------------------------------------------------------------------------------


def add_parsers(sub, common: Callable[..., None]) -> None:
    """The `vae` and `denoiser` sub-commands of app.training.cli; `common` adds the options every trainer has."""
    vae = sub.add_parser("vae", help="train the autoencoder (EQ MM3.3)")
    common(vae, "vae", lr=5e-4, batch=64)
    vae.add_argument("--latent-channels", type=int, default=4, help="c_z")
    vae.add_argument("--downsample-factor", type=int, default=8, help="f (a power of two)")
    vae.add_argument("--kl-weight", type=float, default=1e-5, help="weight of the per-element KL term")
    vae.add_argument("--edge-weight", type=float, default=0.5, help="weight of the image-gradient L1 term")
    vae.add_argument("--stats-size", type=int, default=2048, help="scenes the latent shift/scale are measured on")
    vae.set_defaults(func=train_vae)

    dec = sub.add_parser("decoder", help="fine-tune a trained VAE's decoder; its encoder and latents stay as they are")
    common(dec, "decoder", lr=2e-4, batch=32)
    dec.set_defaults(out="models/vae.safetensors", ckpt_dir="runs/decoder")
    dec.add_argument("--init", default="models/vae.safetensors", help="the trained VAE to start from")
    dec.add_argument("--clip-share", type=float, default=0.5, help="share of each batch drawn from moving clips")
    dec.add_argument("--pair-share", type=float, default=0.0, help="share of each batch drawn from two-shape scenes")
    dec.add_argument("--outline-weight", type=float, default=4.0,
                     help="extra L1 weight on pixels within 2 px of an outline (0: plain L1)")
    dec.add_argument("--edge-weight", type=float, default=0.5, help="weight of the image-gradient L1 term")
    dec.add_argument("--latent-noise", type=float, default=0.0,
                     help="add Gaussian noise of a std drawn from [0, this) to each latent, in the denoiser's "
                          "normalised units (0: exact latents)")
    dec.set_defaults(func=train_decoder)

    den = sub.add_parser("denoiser", help="train caption encoder + DiT on the frozen VAE's latents (EQ MM3.2)")
    common(den, "denoiser", lr=3e-4, batch=128)
    den.add_argument("--vae", default="models/vae.safetensors", help="trained VAE weights")
    den.add_argument("--text-out", default=None,
                     help="caption encoder file (default: text_encoder.safetensors beside --out)")
    den.add_argument("--p-drop", type=float, default=0.1, help="share of empty captions (for classifier-free guidance)")
    den.add_argument("--p-partial", type=float, default=0.3, help="share of partial captions")
    den.add_argument("--pair-share", type=float, default=0.0, help="share of each batch drawn from two-shape scenes")
    den.add_argument("--bank", type=int, default=0,
                     help="encode this many scenes once and draw every batch from them (0: fresh scenes each step)")
    den.add_argument("--warm-start", default=None,
                     help="committed denoiser weights to start from (its caption encoder beside it); the "
                          "vocabulary may have grown since")
    den.add_argument("--schedule", default="scaled_linear", help="noise schedule kind")
    den.add_argument("--timesteps", type=int, default=1000, help="T")
    den.add_argument("--weighting", choices=("none", "min_snr"), default="min_snr", help="loss weighting over t")
    den.set_defaults(func=train_denoiser)
