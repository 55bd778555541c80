"""The served model: loading it once (with a warm-up step), its identity, its size, and its card file."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.pipelines.image import WEIGHT_FILES, GenerationSettings, Pipeline

CARD_FILE = "model-card.json"
LEFT_OUT_OF_TRAINING = ("loss_curve", "schedule")  # of a weights file's training record in GET /model: long, or
# stated elsewhere
MODEL_NAME = "diffusion-lab"
FINGERPRINT_CHARS = 12


@dataclass
class LoadedModel:
    """A pipeline ready to sample, with what the API reports about it."""

    pipeline: Pipeline
    model_id: str  # short hash of the three weights files
    load_s: float
    warm_up_s: float

    @property
    def generator(self) -> Pipeline:
        """What samples its jobs (the diffusion family's generator)."""
        return self.pipeline

    @property
    def device(self) -> str:
        return str(self.pipeline.device)


def fingerprint(model_dir: str | Path, files: Sequence[str] = tuple(WEIGHT_FILES.values())) -> str:
    """First FINGERPRINT_CHARS hex digits of SHA-256 over the files' bytes, in order (default: the image model's)."""
    digest = hashlib.sha256()
    for name in files:
        with open(Path(model_dir) / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:FINGERPRINT_CHARS]


def load_model(model_dir: str | Path, device: str = "auto") -> LoadedModel:
    """Load the pipeline and run one sampling step, so the first request pays no lazy initialisation."""
    t0 = time.perf_counter()
    pipeline = Pipeline.load(model_dir, device)
    model_id = fingerprint(model_dir)
    t1 = time.perf_counter()
    pipeline.generate(GenerationSettings(prompt="", steps=1, guidance_scale=1.0))
    return LoadedModel(pipeline, model_id, load_s=t1 - t0, warm_up_s=time.perf_counter() - t1)


def parameter_counts(pipeline: Pipeline) -> dict[str, int]:
    """Trainable-parameter counts per network and in total."""
    nets = {"vae": pipeline.vae, "text_encoder": pipeline.text, "denoiser": pipeline.dit}
    counts = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
    counts["total"] = sum(counts.values())
    return counts


def token_usage(pipeline: Pipeline, captions: Sequence[str], images: int) -> tuple[int, int]:
    """(tokens read, tokens drawn) of a request, in this model's own tokens: the words of its canonical captions
    (prompt and negative prompt), and the DiT's latent tokens, (latent side / patch)² per image."""
    side = pipeline.dit.config.latent_size // pipeline.dit.config.patch
    return sum(len(caption.split()) for caption in captions), side * side * images


def training_record(extra: dict) -> dict:
    """A weights file's training record (its metadata's extras) as GET /model shows it."""
    return {k: v for k, v in extra.items() if k not in LEFT_OUT_OF_TRAINING}


def written_at(model_dir: str | Path, files: Sequence[str] = tuple(WEIGHT_FILES.values())) -> int:
    """Unix time (s) the newest of the weights files was written: when the served model was made."""
    return int(max((Path(model_dir) / name).stat().st_mtime for name in files))


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def read_card(model_dir: str | Path, name: str = CARD_FILE,
              written_by: str = "diffusion-lab evaluate") -> tuple[dict | None, str | None]:
    """(the card's JSON object, None), or (None, why it could not be read)."""
    path = Path(model_dir) / name
    if not path.is_file():
        return None, f"{path.name} not found in {path.parent}; `{written_by}` writes it"
    try:
        # Non-finite numbers become null: the card is served as JSON, which has no NaN.
        card = json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda _: None, parse_float=_finite)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"cannot read {path.name}: {err}"
    if not isinstance(card, dict):
        return None, f"{path.name} does not hold a JSON object"
    return card, None
