"""The token families of chapter §3.4 as generators: prompt -> caption encoder -> token sampler -> VQ decode.

`autoregressive` draws the tokens in raster order, one network forward each (EQ MM3.5); `masked` fills the grid
in a few rounds (MaskGIT). Both share the VQ tokenizer that turns a token grid into pixels, and report every step
with the grid drawn so far, which `preview` decodes (tokens not drawn yet shown as the plain background, dimmed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.nets.device import pick_device
from app.nets.io import WeightsError, load_module, read_metadata
from app.nets.token_transformer import CaptionedTokens, CaptionedTokensConfig
from app.nets.vq import VQConfig, VQTokenizer
from app.pipelines.image import GenerationResult
from app.pipelines.protocol import refuse_unlearned, words_beyond
from app.pipelines.token_sampling import (
    UNKNOWN,
    TokenStep,
    sample_autoregressive,
    sample_masked,
    token_log_probs,
)
from app.world.prompts import parse_prompt
from app.world.scenes import BACKGROUND_RANGE, to_uint8, tokenize

TOKENIZER_FILE = "vq_tokenizer.safetensors"
FAMILY_FILES = {"autoregressive": "ar_transformer.safetensors", "masked": "masked_transformer.safetensors"}
FAMILIES = ("diffusion", *FAMILY_FILES)
UNDRAWN_DIMMING = 0.45  # previews: tokens not drawn yet are shown as background, this much darker


@dataclass(frozen=True)
class TokenSettings:
    """What decides a token family's picture besides the weights; same settings -> same images."""

    family: str = "autoregressive"
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    guidance_scale: float = 3.0  # EQ MM3.4 on the logits
    temperature: float = 1.0  # 0: the most likely token
    top_k: int = 0  # 0: every code
    rounds: int = 8  # the masked family's parallel rounds
    batch_size: int = 1

    def image_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.batch_size)]

    @property
    def rows(self) -> int:
        return self.batch_size

    def batch_key(self) -> tuple:
        """Prompt, seed and scale are per sample; the family and how tokens are drawn are shared by a batch."""
        return self.family, self.temperature, self.top_k, self.rounds if self.family == "masked" else 0


def sequential_forwards(causal: bool, tokens: int, rounds: int) -> int:
    """Network forwards one after another to draw an image of N tokens: one per token read causally (EQ MM3.5), else
    one per round of the masked sampler (at most one round per token)."""
    return tokens if causal else max(1, min(rounds, tokens))


class TokenFamily:
    """One loaded token family: its caption encoder and transformer, and the shared VQ tokenizer."""

    def __init__(self, tokenizer: VQTokenizer, model: CaptionedTokens, metadata: dict | None = None,
                 report_every_row: bool = True):
        self.tokenizer, self.model = tokenizer.eval(), model.eval()
        self.config = model.transformer.config
        self.family = self.config.family
        self.metadata = metadata or {}
        self.device = next(model.parameters()).device
        # The autoregressive family reports once per row of the grid, not per token (N events would flood a stream).
        self.every = self.config.grid if (report_every_row and self.config.causal) else 1
        self._background = self._background_tokens()

    @classmethod
    def load(cls, model_dir: str | Path, family: str, device: str = "auto",
             tokenizer: VQTokenizer | None = None) -> TokenFamily:
        """Load the family's file (and the tokenizer, unless given) from model_dir; WeightsError names a bad file."""
        model_dir, dev = Path(model_dir), pick_device(device)
        meta = {}
        if tokenizer is None:
            tokenizer, meta["tokenizer"] = load_module(model_dir / TOKENIZER_FILE, VQTokenizer, VQConfig, dev)
        model, meta[family] = load_module(model_dir / FAMILY_FILES[family], CaptionedTokens, CaptionedTokensConfig,
                                          dev)
        if model.transformer.config.family != family:
            raise WeightsError(f"{FAMILY_FILES[family]} holds a {model.transformer.config.family} model")
        return cls(tokenizer, model, meta)

    @staticmethod
    def available(model_dir: str | Path, family: str) -> bool:
        return all((Path(model_dir) / name).is_file() for name in (TOKENIZER_FILE, FAMILY_FILES[family]))

    @staticmethod
    def metadata_of(model_dir: str | Path, family: str) -> dict:
        return {name: read_metadata(Path(model_dir) / file)
                for name, file in (("tokenizer", TOKENIZER_FILE), (family, FAMILY_FILES[family]))}

    @property
    def tokens(self) -> int:
        return self.config.tokens

    @property
    def resolution(self) -> int:
        return self.config.grid * self.tokenizer.config.downsample_factor

    def sequential_forwards(self, settings: TokenSettings) -> int:
        """Network forwards one after another to draw an image: one per token, or one per round."""
        return sequential_forwards(self.config.causal, self.tokens, settings.rounds)

    def total_steps(self, parts: Sequence[TokenSettings]) -> int:
        if self.config.causal:
            return -(-self.tokens // self.every)
        return sequential_forwards(False, self.tokens, parts[0].rounds)

    def unlearned_words(self, caption: str) -> list[str]:
        """The words of a canonical caption beyond this family's caption encoder's vocabulary."""
        return words_beyond(caption, self.model.text.config.vocab_size)

    def check(self, parts: Sequence[TokenSettings]) -> None:
        """Raise PromptNotLearned for a word beyond this family's caption encoder's vocabulary."""
        refuse_unlearned(parts, self.unlearned_words)

    @torch.no_grad()
    def encode_captions(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.text(torch.from_numpy(tokenize(captions)).to(self.device))

    def _per_sample(self, parts: Sequence[TokenSettings], captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        context, keep = self.encode_captions(captions)  # (J, L, D), (J, L)
        index = torch.repeat_interleave(torch.arange(len(parts)), torch.tensor([p.batch_size for p in parts]))
        return context[index.to(self.device)], keep[index.to(self.device)]

    @torch.no_grad()
    def sample_tokens(self, parts: Sequence[TokenSettings],
                      callback: Callable[[TokenStep], None] | None = None) -> torch.Tensor:
        """The token grids (B, N) of the parts' images, in order; callback(TokenStep) at every step."""
        first = parts[0]
        if any(part.batch_key() != first.batch_key() for part in parts):
            raise ValueError("parts sampled together must share family, temperature, top_k and rounds")
        if first.family != self.family:
            raise ValueError(f"this generator samples the {self.family} family, not {first.family!r}")
        cond = self._per_sample(parts, [parse_prompt(p.prompt).canonical for p in parts])
        uncond = self._per_sample(parts, [parse_prompt(p.negative_prompt).canonical for p in parts])
        scale = torch.tensor([p.guidance_scale for p in parts for _ in range(p.batch_size)], dtype=torch.float32)
        generators = [torch.Generator().manual_seed(int(s)) for p in parts for s in p.image_seeds()]
        if self.config.causal:
            return sample_autoregressive(self.model.transformer, cond, uncond, scale, first.temperature, first.top_k,
                                         generators, callback, self.every)
        return sample_masked(self.model.transformer, cond, uncond, scale, first.temperature, first.top_k,
                             first.rounds, generators, callback)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token grids (B, N) -> images (B, 3, H, W) in [-1, 1]."""
        g = self.config.grid
        return self.tokenizer.decode(tokens.view(-1, g, g).to(self.device))

    @torch.no_grad()
    def generate_batch(self, parts: Sequence[TokenSettings],
                       callback: Callable[[TokenStep], None] | None = None) -> list[GenerationResult]:
        started = time.perf_counter()
        last = [started]

        def on_step(step: TokenStep) -> None:
            now = time.perf_counter()
            step.seconds = now - last[0]
            callback(step)
            last[0] = time.perf_counter()

        tokens = self.sample_tokens(parts, on_step if callback is not None else None)
        sampled = time.perf_counter()
        images = to_uint8(self.decode(tokens))
        done = time.perf_counter()
        timings = {"sampling_s": sampled - started, "decode_s": done - sampled, "total_s": done - started,
                   "network_forwards": self.sequential_forwards(parts[0]), "batch_jobs": len(parts),
                   "batch_images": len(tokens)}
        bounds = np.cumsum([0, *[p.batch_size for p in parts]])
        return [GenerationResult(images=images[lo:hi], seeds=p.image_seeds(), settings=p,
                                 prompt_canonical=parse_prompt(p.prompt).canonical, timings=dict(timings),
                                 tokens=tokens[lo:hi].cpu())
                for p, lo, hi in zip(parts, bounds[:-1], bounds[1:])]

    def generate(self, settings: TokenSettings,
                 callback: Callable[[TokenStep], None] | None = None) -> GenerationResult:
        return self.generate_batch([settings], callback)[0]

    # -- what a viewer sees -------------------------------------------------------------------

    @torch.no_grad()
    def _background_tokens(self) -> torch.Tensor:
        """The tokens of an empty scene (N,): what a token not drawn yet is shown as."""
        side, grey = self.resolution, sum(BACKGROUND_RANGE) / 2 / 127.5 - 1.0  # the mean background tint
        return self.tokenizer.encode(torch.full((1, 3, side, side), grey, device=self.device)).flatten()

    @torch.no_grad()
    def preview(self, grid: torch.Tensor) -> np.ndarray:
        """A grid drawn so far (N,) with UNKNOWN holes -> uint8 (H, W, 3): holes drawn as background, dimmed."""
        grid = grid.to(self.device)
        unknown = grid == UNKNOWN
        filled = torch.where(unknown, self._background, grid)
        image = to_uint8(self.decode(filled[None]))[0].astype(np.float32)
        f, g = self.tokenizer.config.downsample_factor, self.config.grid
        holes = unknown.view(g, g).cpu().numpy().repeat(f, 0).repeat(f, 1)
        image[holes] *= 1 - UNDRAWN_DIMMING
        return image.round().astype(np.uint8)

    @torch.no_grad()
    def log_probs(self, tokens: torch.Tensor, prompts: str | list[str]) -> torch.Tensor:
        """log p(token_i | tokens_<i, prompt) (B, N) in nats, one prompt for all rows or one per row (the
        autoregressive family only: EQ MM3.5's factors)."""
        if not self.config.causal:
            raise ValueError("exact token likelihoods are the autoregressive family's (EQ MM3.5)")
        prompts = [prompts] * len(tokens) if isinstance(prompts, str) else prompts
        context, keep = self.encode_captions([parse_prompt(p).canonical for p in prompts])
        return token_log_probs(self.model.transformer, tokens.to(self.device), context, keep)
