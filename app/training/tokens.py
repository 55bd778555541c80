"""Train the models of chapter §3.4: the VQ tokenizer (`vq`), then the autoregressive (`ar`) and masked (`masked`)
token transformers on its tokens.

The tokenizer learns on the mixed world the diffusion model learns on (one- and two-shape scenes): weighted L1
(pixels near an outline count `--outline-weight` times more, since a small square and a rounded one differ in a
few outline pixels), L1 on image gradients, MSE, and the commitment loss. Its file holds the EMA weights and the
live codebook; validation reports PSNR, the codebook's usage and the judges' reading of reconstructions: the
ceiling every model on these tokens inherits.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from app.measure.tokens import tokenizer_ceiling
from app.nets.io import load_module, save_module
from app.nets.text import TEXT_SIZES
from app.nets.token_transformer import TOKEN_SIZES, CaptionedTokens, CaptionedTokensConfig, mask_ratio
from app.nets.vq import VQ_SIZES, VQConfig, VQTokenizer
from app.training.image import image_gradients, near_edges
from app.training.loop import Run, fit, provenance, read_checkpoint, setup_backend
from app.world.held_out import VAL_SEED, held_out_pairs, held_out_scenes


def vq_config_from_args(args: argparse.Namespace) -> VQConfig:
    """The size preset with --downsample-factor, --codebook-size and --code-dim applied."""
    base = VQ_SIZES[args.size]()
    levels = int(round(np.log2(args.downsample_factor))) + 1
    if 2 ** (levels - 1) != args.downsample_factor:
        raise SystemExit("--downsample-factor must be a power of two")
    mult = (tuple(base.channel_mult) + (base.channel_mult[-1],) * levels)[:levels]
    return VQ_SIZES[args.size](channel_mult=mult, codebook_size=args.codebook_size or base.codebook_size,
                               latent_channels=args.code_dim or base.latent_channels)


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, outline_weight: float, edge_weight: float,
                        mse_weight: float) -> torch.Tensor:
    """Outline-weighted L1 + edge_weight * L1 on image gradients + mse_weight * MSE."""
    x_hat = x_hat.float()
    weight = 1 + outline_weight * near_edges(x)
    loss = (weight * (x_hat - x).abs()).mean() / weight.mean()
    (gx_hat, gy_hat), (gx, gy) = image_gradients(x_hat), image_gradients(x)
    loss = loss + edge_weight * (F.l1_loss(gx_hat, gx) + F.l1_loss(gy_hat, gy))
    return loss + mse_weight * F.mse_loss(x_hat, x)


def mixed_scenes(n: int, rng: np.random.Generator, pair_share: float, resolution: int,
                 device: torch.device) -> torch.Tensor:
    """n images (B, 3, H, W): one-shape scenes, then round(n * pair_share) two-shape ones."""
    from app.world.compose import render_pairs, sample_pairs
    from app.world.scenes import render, sample_scenes

    n_pair = int(round(n * pair_share))
    return torch.cat([render(sample_scenes(n - n_pair, rng, resolution), device),
                      render_pairs(sample_pairs(n_pair, rng, resolution), device)])


def train_tokenizer(args: argparse.Namespace, device: torch.device) -> Path:
    """Train the VQ tokenizer on the mixed world; save the EMA weights with the live codebook."""
    from app.world.compose import render_pairs
    from app.world.scenes import render

    setup_backend(device)
    torch.manual_seed(args.seed)
    resumed = read_checkpoint(args.resume, "vq") if args.resume else None
    config = VQConfig(**resumed["configs"]["vq"]) if resumed else vq_config_from_args(args)
    model = VQTokenizer(config).to(device)
    run = Run(args, device, model, {"vq": config.to_dict()})
    if resumed:
        run.load_checkpoint(resumed)
        model.quantizer.initialised.fill_(True)
    forward = run.parallel(model)

    def train_step() -> torch.Tensor:
        x = run.shard(mixed_scenes(args.batch, run.rng, args.pair_share, args.resolution, device))
        x_hat, _, commitment = forward(x)
        loss = reconstruction_loss(x_hat, x, args.outline_weight, args.edge_weight, args.mse_weight)
        return loss + args.commitment * commitment

    val_scenes = held_out_scenes(args.val_size, args.resolution)
    val_x = render(val_scenes, device)
    val_pairs = held_out_pairs(args.val_size, args.resolution)
    val_pair_x = render_pairs(val_pairs, device)

    @torch.no_grad()
    def validate(ema: VQTokenizer, final: bool) -> dict:
        out = tokenizer_ceiling(ema, val_scenes, val_x, val_pairs, val_pair_x)
        out["restarts"] = float(model.quantizer.restarts)
        return out

    summary = fit(run, train_step, validate)
    ema = run.ema.module
    extra = provenance(run, summary) | {
        "downsample_factor": config.downsample_factor, "resolution": args.resolution,
        "tokens_per_image": (args.resolution // config.downsample_factor) ** 2,
        "param_count": sum(p.numel() for p in ema.parameters()), "pair_share": args.pair_share,
    }
    path = save_module(args.out, ema, config, extra)
    tqdm.write(f"wrote {path}")
    return path


# ---------------------------------------------------------------------------------------------
# The autoregressive and masked transformers
# ---------------------------------------------------------------------------------------------


def masked_slots(tokens: torch.Tensor, mask_token: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """MaskGIT's training input: per sample a share cos(π/2 u), u ~ U(0, 1), of the tokens (at least one) replaced
    by the mask token. Returns (slots (B, N), which were masked (B, N) bool)."""
    b, n = tokens.shape
    u = torch.rand(b, generator=generator, device=tokens.device)
    count = torch.ceil(mask_ratio(u) * n).clamp(1, n)  # (B,)
    rank = torch.rand(b, n, generator=generator, device=tokens.device).argsort(1).argsort(1)  # a random order
    masked = rank < count[:, None]
    return tokens.masked_fill(masked, mask_token), masked


def token_loss(model: CaptionedTokens, tokens: torch.Tensor, captions: torch.Tensor,
               generator: torch.Generator) -> torch.Tensor:
    """Cross-entropy in nats per predicted token: every token for the autoregressive family (EQ MM3.5), the masked
    ones for the masked family."""
    net = model.module if hasattr(model, "module") else model  # inside DDP
    config = net.transformer.config
    if config.causal:
        logits = model(net.transformer.start_slots(tokens), captions)
        return F.cross_entropy(logits.float().flatten(0, 1), tokens.flatten())
    slots, masked = masked_slots(tokens, config.special_token, generator)
    logits = model(slots, captions)
    return F.cross_entropy(logits.float()[masked], tokens[masked])


def train_token_model(args: argparse.Namespace, device: torch.device) -> Path:
    """Train a caption encoder and a token transformer, causal (`ar`) or masked (`masked`), on the tokens of a
    trained VQ tokenizer, drawn from a bank of scenes tokenized once."""
    from app.training.image import latent_bank
    from app.world.compose import pair_captions, render_pairs, sample_pairs
    from app.world.scenes import VOCAB, random_captions, render, sample_scenes, tokenize

    setup_backend(device)
    torch.manual_seed(args.seed)
    tokenizer, tokenizer_extra = load_module(args.tokenizer, VQTokenizer, VQConfig, device)
    tokenizer.requires_grad_(False)
    grid = args.resolution // tokenizer.config.downsample_factor
    resumed = read_checkpoint(args.resume, args.kind) if args.resume else None
    if resumed:
        config = CaptionedTokensConfig(**resumed["configs"]["tokens"])
    else:
        config = CaptionedTokensConfig(
            TEXT_SIZES[args.size](vocab_size=len(VOCAB)),
            TOKEN_SIZES[args.size](codebook_size=tokenizer.codebook_size, grid=grid, causal=args.kind == "ar",
                                   context_dim=TEXT_SIZES[args.size]().width))
    model = CaptionedTokens(config).to(device)
    run = Run(args, device, model, {"tokens": config.to_dict()})
    if resumed:
        run.load_checkpoint(resumed)
    forward = run.parallel(model)

    def draw(n: int, rng: np.random.Generator):
        n_pair = int(round(n * args.pair_share))
        return sample_scenes(n - n_pair, rng, args.resolution), sample_pairs(n_pair, rng, args.resolution)

    def captions_of(scenes, pairs, rng: np.random.Generator) -> torch.Tensor:
        captions = (random_captions(scenes, rng, p_partial=args.p_partial, p_drop=args.p_drop)
                    + pair_captions(pairs, rng, p_partial=args.p_partial, p_drop=args.p_drop))
        return torch.from_numpy(tokenize(captions)).to(device)

    def encode(scenes, pairs) -> torch.Tensor:
        parts = [render(scenes, device)] if len(scenes) else []
        x = torch.cat(parts + ([render_pairs(pairs, device)] if len(pairs) else []))
        return tokenizer.encode(x).flatten(1)  # (B, N)

    bank = latent_bank(*draw(args.bank, np.random.default_rng(args.seed + 7)), encode)

    def train_step() -> torch.Tensor:
        scenes, pairs, tokens = bank.sample(args.batch, run.rng)
        captions = captions_of(scenes, pairs, run.rng)
        return token_loss(forward, run.shard(tokens), run.shard(captions), run.rank_gen)

    val_rng = np.random.default_rng(VAL_SEED)
    val_scenes, val_pairs = draw(args.val_size, val_rng)
    val_tokens = encode(val_scenes, val_pairs)
    val_captions = captions_of(val_scenes, val_pairs, val_rng)

    @torch.no_grad()
    def validate(ema: CaptionedTokens, final: bool) -> dict:
        nats = token_loss(ema, val_tokens, val_captions, torch.Generator(device=device).manual_seed(VAL_SEED))
        return {"val_bits_per_token": nats.item() / math.log(2)}

    summary = fit(run, train_step, validate)
    ema = run.ema.module
    extra = provenance(run, summary) | {
        "family": config.transformer.family, "tokenizer": Path(args.tokenizer).name,
        "tokenizer_git_commit": tokenizer_extra.get("git_commit"), "vocab": list(VOCAB),
        "resolution": args.resolution, "bank": args.bank, "pair_share": args.pair_share,
        "param_count": sum(p.numel() for p in ema.parameters()),
    }
    path = save_module(args.out, ema, config, extra)
    tqdm.write(f"wrote {path}")
    return path


def add_parsers(sub, common: Callable[..., None]) -> None:
    """The `vq`, `ar` and `masked` sub-commands of app.training.cli."""
    vq = sub.add_parser("vq", help="train the VQ tokenizer of the autoregressive and masked models (chapter §3.4)")
    common(vq, "vq", lr=5e-4, batch=32)
    vq.set_defaults(out="models/vq_tokenizer.safetensors", ema_decay=0.995)
    vq.add_argument("--downsample-factor", type=int, default=4, help="f: tokens are (resolution / f)^2")
    vq.add_argument("--codebook-size", type=int, default=0, help="K (0: the size preset's)")
    vq.add_argument("--code-dim", type=int, default=0, help="dimension of a code (0: the size preset's)")
    vq.add_argument("--pair-share", type=float, default=0.5, help="share of each batch drawn from two-shape scenes")
    vq.add_argument("--outline-weight", type=float, default=4.0,
                    help="extra L1 weight on pixels within 2 px of an outline (0: plain L1)")
    vq.add_argument("--edge-weight", type=float, default=0.5, help="weight of the image-gradient L1 term")
    vq.add_argument("--mse-weight", type=float, default=1.0, help="weight of the MSE term")
    vq.add_argument("--commitment", type=float, default=0.25, help="beta of the commitment loss")
    vq.set_defaults(func=train_tokenizer)

    for kind, out, what in (("ar", "ar_transformer", "the autoregressive transformer (EQ MM3.5)"),
                            ("masked", "masked_transformer", "the masked transformer (MaskGIT)")):
        p = sub.add_parser(kind, help=f"train {what} and its caption encoder on a trained tokenizer's tokens")
        common(p, kind, lr=5e-4, batch=64)
        p.set_defaults(out=f"models/{out}.safetensors")
        p.add_argument("--tokenizer", default="models/vq_tokenizer.safetensors", help="trained VQ tokenizer")
        p.add_argument("--bank", type=int, default=32768, help="scenes tokenized once, every batch drawn from them")
        p.add_argument("--pair-share", type=float, default=0.5, help="share of two-shape scenes")
        p.add_argument("--p-drop", type=float, default=0.1, help="share of empty captions (for guidance)")
        p.add_argument("--p-partial", type=float, default=0.3, help="share of partial captions")
        p.set_defaults(func=train_token_model)
