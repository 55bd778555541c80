"""Chapter §3.4 on the loaded models: the three families' sizes, what the judge reads in their pictures, the
autoregressive model's likelihood of a token grid (EQ MM3.5), and the tokenizer's codebook beside the VAE.

EQ MM3.5 factors an image's probability into one factor per token, p(z_1..N | c) = prod_i p(z_i | z_<i, c), so
the autoregressive model, read teacher-forced in one forward, gives every token's log-probability exactly. Here
they are in bits: -log2 p(z_i | ...) is what an entropy coder driven by the model would spend on token i, the sum
is the image's code length, and a model that knew nothing would spend log2 K on every token.

Everything is measured on the weights the server has loaded; the codebook panel once per process and model
(app/lab/once.py), on fixed held-out scenes, as the tokenizer's own validation measures it (app/measure/tokens.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import torch

from app.lab.guidance import judge_against
from app.lab.once import MeasuredOnce
from app.measure.judge import as_batch
from app.measure.tokens import reconstruction_ceiling, tokenizer_ceiling
from app.pipelines.image import Pipeline
from app.pipelines.tokens import TokenFamily, TokenSettings, sequential_forwards
from app.world.compose import render_pairs
from app.world.held_out import VAL_SEED, held_out_pairs, held_out_scenes
from app.world.prompts import matching_scene, parse_prompt
from app.world.scenes import render, to_uint8

FAMILIES = ("autoregressive", "masked", "diffusion")  # the page's columns, in the chapter's order
CODEBOOK_SCENES = 64  # held-out scenes of each kind (one shape, two shapes) the codebook panel reconstructs


def uniform_bits(tokens: int, codebook_size: int) -> float:
    """Bits a model that gives every one of K codes the same probability spends on N tokens: N log2 K."""
    return tokens * math.log2(codebook_size)


def forwards_per_image(family: str, tokens: int, rounds: int, steps: int) -> int:
    """Network forwards one after another to draw one image of N tokens: one per token (autoregressive) or per round
    (masked), app/pipelines/tokens.py's count; one per denoising step (diffusion: both guidance rows in one)."""
    if family == "diffusion":
        return steps
    return sequential_forwards(family == "autoregressive", tokens, rounds)


# ------------------------------------------------------------------------------------------ what is loaded


@dataclass(frozen=True)
class FamilySize:
    """One family's network as loaded: the token grid (or the DiT's patch grid) and the transformer's size."""

    family: str
    resolution: int  # image side in pixels
    grid: int  # tokens per side
    tokens: int  # N
    width: int
    depth: int
    heads: int
    parameters: int
    codebook_size: int | None  # K (token families)
    downsample_factor: int  # pixels per token side (token families) or per latent cell (diffusion)
    patch: int | None  # latent cells per token side (diffusion)


def token_family_size(generator: TokenFamily) -> FamilySize:
    cfg = generator.config
    return FamilySize(family=generator.family, resolution=generator.resolution, grid=cfg.grid, tokens=cfg.tokens,
                      width=cfg.width, depth=cfg.depth, heads=cfg.heads,
                      parameters=sum(p.numel() for p in generator.model.transformer.parameters()),
                      codebook_size=cfg.codebook_size, downsample_factor=generator.tokenizer.config.downsample_factor,
                      patch=None)


def diffusion_size(pipeline: Pipeline) -> FamilySize:
    cfg = pipeline.dit.config
    grid = cfg.latent_size // cfg.patch
    return FamilySize(family="diffusion", resolution=pipeline.resolution, grid=grid, tokens=grid * grid,
                      width=cfg.width, depth=cfg.depth, heads=cfg.heads,
                      parameters=sum(p.numel() for p in pipeline.dit.parameters()), codebook_size=None,
                      downsample_factor=pipeline.vae.config.downsample_factor, patch=cfg.patch)


# ------------------------------------------------------------------------------------------ the judge


@dataclass(frozen=True)
class JudgedImage:
    prompt_canonical: str
    judged: dict  # what the judge reads, as app/lab/guidance.py's entries (two shapes: with "objects")
    adherence: dict[str, float]  # per attribute the prompt names (two shapes: count, binding, relation), and "all"


def judge_image(image: np.ndarray, prompt: str) -> JudgedImage:
    """One image (H, W, 3) uint8 judged against a one- or two-shape prompt, as the guidance lab judges its grid."""
    parsed = parse_prompt(prompt)
    judged, adherence = judge_against(image[None], [parsed])
    return JudgedImage(parsed.canonical, judged[0], adherence)


# ------------------------------------------------------------------------------------------ EQ MM3.5's factors


class Unfit(ValueError):
    """An input the loaded model cannot take (wrong size, token count, code): `field` names it, `kind` the rule."""

    def __init__(self, field: str, kind: str, message: str):
        super().__init__(message)
        self.field, self.kind = field, kind


@dataclass(frozen=True)
class Likelihood:
    """The autoregressive model's log-probability of every token of one grid, given the prompt (EQ MM3.5)."""

    source: str  # "scene", "image" or "tokens"
    prompt_canonical: str
    scene_caption: str | None  # the full caption of the scene drawn (source "scene")
    grid: int
    codebook_size: int
    tokens: np.ndarray  # (grid, grid) codebook indices, raster order row by row
    log2_probs: np.ndarray  # (grid, grid) log2 p(z_i | z_<i, c), bits (<= 0)
    total_bits: float  # -sum log2 p: the image's code length under the model
    bits_per_token: float
    uniform_bits: float  # N log2 K: the code length of a model that knows nothing
    unconditional_bits: float  # the code length of the same tokens under the empty caption
    picture: np.ndarray  # (H, W, 3) uint8: the scene drawn or the image given (none for tokens)
    decoded: np.ndarray  # (H, W, 3) uint8: what the tokens decode to


def to_bits(log_probs_nats: torch.Tensor) -> torch.Tensor:
    """log p in nats -> log2 p (bits)."""
    return log_probs_nats / math.log(2)


def _tokens_of(generator: TokenFamily, tokens: Sequence[int]) -> torch.Tensor:
    n, k = generator.tokens, generator.config.codebook_size
    if len(tokens) != n:
        raise Unfit("tokens", "token_count", f"the loaded model draws {n} tokens ({generator.config.grid} x "
                                             f"{generator.config.grid}), not {len(tokens)}")
    if any(not 0 <= t < k for t in tokens):
        raise Unfit("tokens", "token_range", f"every token must be a code of the codebook, 0 to {k - 1}")
    return torch.tensor([list(tokens)], dtype=torch.long)


def _image_of(generator: TokenFamily, image: np.ndarray) -> torch.Tensor:
    side = generator.resolution
    if image.shape[:2] != (side, side):
        raise Unfit("png_base64", "image_size", f"the tokenizer reads {side} x {side} images, not "
                                                f"{image.shape[1]} x {image.shape[0]}")
    return as_batch(image) / 127.5 - 1.0


@torch.no_grad()
def likelihood(generator: TokenFamily, prompt: str, source: str, scene_seed: int = 0, image: np.ndarray | None = None,
               tokens: Sequence[int] | None = None) -> Likelihood:
    """EQ MM3.5's factors of one token grid under the autoregressive model: of the scene matching_scene draws for
    the prompt from scene_seed (source "scene"), of an image re-encoded by the tokenizer ("image"), or of a given
    grid ("tokens"). PromptNotLearned for a prompt its caption encoder cannot read; Unfit for an input it cannot
    take."""
    generator.check([TokenSettings(family=generator.family, prompt=prompt)])
    caption = None
    if source == "tokens":
        grid, picture = _tokens_of(generator, tokens or []), None
    else:
        if source == "scene":  # scored as the 8-bit picture shown, so that sending it back scores the same
            scene, caption = matching_scene(parse_prompt(prompt), scene_seed, generator.resolution)
            image = to_uint8(scene)[0]
        picture = image
        grid = generator.tokenizer.encode(_image_of(generator, image).to(generator.device)).flatten(1)
    grid = grid.to(generator.device)
    bits = to_bits(generator.log_probs(grid, prompt))[0].cpu()  # (N,)
    unconditional = to_bits(generator.log_probs(grid, ""))[0].cpu()
    decoded = to_uint8(generator.decode(grid))[0]
    g, k = generator.config.grid, generator.config.codebook_size
    total = -float(bits.double().sum())
    return Likelihood(
        source=source, prompt_canonical=parse_prompt(prompt).canonical, scene_caption=caption, grid=g,
        codebook_size=k, tokens=grid[0].cpu().numpy().reshape(g, g), log2_probs=bits.numpy().reshape(g, g),
        total_bits=total, bits_per_token=total / generator.tokens, uniform_bits=uniform_bits(generator.tokens, k),
        unconditional_bits=-float(unconditional.double().sum()),
        picture=decoded if picture is None else picture, decoded=decoded)


# ------------------------------------------------------------------------------------------ the codebook


@dataclass(frozen=True)
class Ceiling:
    """An autoencoder's reconstructions of the held-out scenes: PSNR and the share the judges read right."""

    psnr_db: float
    pair_psnr_db: float
    judge_all: float
    pair_judge_all: float


@dataclass(frozen=True)
class Codebook:
    """The VQ tokenizer's codebook and the ceiling it sets, with the diffusion model's VAE on the same scenes."""

    codebook_size: int  # K
    code_dim: int
    grid: int
    tokens: int  # N per image
    downsample_factor: int
    resolution: int
    codes_used: int  # over the held-out scenes' tokens
    dead_codes: int
    perplexity: float
    usage: float  # codes_used / K
    tokenizer: Ceiling
    vae: Ceiling
    vae_downsample_factor: int
    vae_latent_channels: int
    vae_resolution: int
    scenes: int  # of each kind
    seed: int
    measured_s: float
    measured_at: str
    cached: bool = False


def _held_out(n: int, resolution: int, device: torch.device):
    scenes, pairs = held_out_scenes(n, resolution), held_out_pairs(n, resolution)
    return scenes, render(scenes, device), pairs, render_pairs(pairs, device)


@torch.no_grad()
def measure_codebook(generator: TokenFamily, pipeline: Pipeline, n: int = CODEBOOK_SCENES) -> Codebook:
    """Reconstruct n held-out one-shape and n two-shape scenes through the tokenizer and through the VAE."""
    started = time.perf_counter()
    tokenizer = generator.tokenizer
    scenes, x, pairs, pair_x = _held_out(n, generator.resolution, generator.device)
    vq = tokenizer_ceiling(tokenizer, scenes, x, pairs, pair_x)
    v_scenes, v_x, v_pairs, v_pair_x = _held_out(n, pipeline.resolution, pipeline.device)
    vae = reconstruction_ceiling(pipeline.vae.reconstruct(v_x), v_x, v_scenes, pipeline.vae.reconstruct(v_pair_x),
                                 v_pair_x, v_pairs)
    k, cfg = tokenizer.codebook_size, tokenizer.config
    return Codebook(
        codebook_size=k, code_dim=cfg.latent_channels, grid=generator.config.grid, tokens=generator.tokens,
        downsample_factor=cfg.downsample_factor, resolution=generator.resolution, codes_used=int(vq["codes_used"]),
        dead_codes=int(vq["dead_codes"]), perplexity=vq["perplexity"], usage=vq["codes_used"] / k,
        tokenizer=Ceiling(*(vq[f] for f in ("psnr_db", "pair_psnr_db", "judge_all", "pair_judge_all"))),
        vae=Ceiling(**vae), vae_downsample_factor=pipeline.vae.config.downsample_factor,
        vae_latent_channels=pipeline.vae.config.latent_channels, vae_resolution=pipeline.resolution, scenes=n,
        seed=VAL_SEED, measured_s=time.perf_counter() - started,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"))


_codebooks = MeasuredOnce()


def codebook_once(generator: TokenFamily, pipeline: Pipeline, key: tuple[str, str],
                  remeasure: bool = False) -> Codebook:
    """measure_codebook() the first time per process and pair of models (key: their ids), or when asked to again."""
    return _codebooks.get(key, lambda: measure_codebook(generator, pipeline), refresh=remeasure)


# ------------------------------------------------------------------------------------------ the page's questions


def page_context() -> dict:
    """The check-yourself answers, from the functions above: how many times more sequential forwards a 64 px image
    on a 4-pixel token grid costs autoregressively than in 8 masked rounds, and what a know-nothing model spends
    on 256 tokens of a 512-code codebook."""
    tokens, rounds, steps = (64 // 4) ** 2, 8, 20
    return {
        "quiz_rounds": (forwards_per_image("autoregressive", tokens, rounds, steps)
                        / forwards_per_image("masked", tokens, rounds, steps)),
        "quiz_uniform_bits": uniform_bits(256, 512),
        "families": FAMILIES,
    }
