"""The token families of chapter §3.4 as the server holds them: loading each beside the image model (one shared VQ
tokenizer), its identity, a warm-up image, and what GET /model says of it. A family's request is an ordinary job of
the sampling service, sampled by its loaded TokenFamily (app/pipelines/tokens.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from app.nets.io import WeightsError
from app.pipelines.tokens import FAMILY_FILES, TOKENIZER_FILE, TokenFamily, TokenSettings
from app.service.models import fingerprint, training_record


@dataclass
class LoadedTokenFamily:
    """One token family ready to sample, and its identity."""

    generator: TokenFamily
    model_id: str  # short hash of the tokenizer and the family's file
    load_s: float
    warm_up_s: float

    @property
    def device(self) -> str:
        return str(self.generator.device)

    @property
    def codebook_size(self) -> int:
        """The codes a token is drawn from (top_k's served limit)."""
        return self.generator.config.codebook_size


def missing_family_files(model_dir: str | Path, family: str) -> str | None:
    """Why `family` cannot be loaded from model_dir (its missing files), or None when they are there."""
    missing = [name for name in (TOKENIZER_FILE, FAMILY_FILES[family]) if not (Path(model_dir) / name).is_file()]
    if not missing:
        return None
    files = f"file{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    return f"{family} model not loaded: {files} missing in {model_dir}"


def load_token_families(model_dir: str | Path, device: str) -> tuple[dict[str, LoadedTokenFamily], dict[str, str]]:
    """Every token family whose files are in model_dir, each warmed up with one image; ({family: loaded},
    {family: why not loaded}). A family that fails costs only itself."""
    loaded, errors = {}, {}
    tokenizer = None
    for family in FAMILY_FILES:
        if missing := missing_family_files(model_dir, family):
            errors[family] = missing
            continue
        started = time.perf_counter()
        try:
            generator = TokenFamily.load(model_dir, family, device, tokenizer)
            tokenizer = generator.tokenizer
            model_id = fingerprint(model_dir, (TOKENIZER_FILE, FAMILY_FILES[family]))
            ready = time.perf_counter()
            generator.generate(TokenSettings(family=family, guidance_scale=1.0, rounds=1))
        except WeightsError as err:
            errors[family] = f"{family} model not loaded: {err}"
            continue
        except Exception as err:  # a config the code does not know: the family is not served, the rest is
            errors[family] = f"{family} model not loaded: {type(err).__name__}: {err}"
            continue
        loaded[family] = LoadedTokenFamily(generator, model_id, load_s=ready - started,
                                           warm_up_s=time.perf_counter() - ready)
    return loaded, errors


# ------------------------------------------------------------------------------------------ what GET /model says


def family_section(model_dir: str | Path, family: str, loaded: LoadedTokenFamily | None, error: str | None) -> dict:
    """GET /model's entry of one token family: loaded or why not; from its files, when they are readable, the configs
    (transformer, caption encoder, tokenizer), the token grid and the training records; identity and parameter
    counts when loaded."""
    if loaded is None and error is None:
        error = missing_family_files(model_dir, family) or \
            f"{family} model not loaded: it loads after the image model, which is not loaded"
    section = {"loaded": loaded is not None, "load_error": None if loaded else error, "model_id": None,
               "files": [TOKENIZER_FILE, FAMILY_FILES[family]], "config": None, "text_encoder_config": None,
               "tokenizer_config": None, "grid": None, "tokens": None, "codebook_size": None, "resolution": None,
               "parameters": None, "training": None, "tokenizer_training": None}
    try:
        meta = TokenFamily.metadata_of(model_dir, family)
        networks, tokenizer = meta[family]["config"], meta["tokenizer"]["config"]
        grid = networks["transformer"]["grid"]
        section |= {"config": networks["transformer"], "text_encoder_config": networks["text"],
                    "tokenizer_config": tokenizer, "grid": grid, "tokens": grid * grid,
                    "codebook_size": networks["transformer"]["codebook_size"],
                    "training": training_record(meta[family]["extra"]),
                    "tokenizer_training": training_record(meta["tokenizer"]["extra"])}
    except (WeightsError, KeyError, TypeError) as err:  # unreadable, or a config of another shape
        section["load_error"] = section["load_error"] or f"{family} model files unreadable: {err}"
    if loaded is not None:
        nets = {"tokenizer": loaded.generator.tokenizer, "text_encoder": loaded.generator.model.text,
                "transformer": loaded.generator.model.transformer}
        counts = {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}
        section |= {"model_id": loaded.model_id, "resolution": loaded.generator.resolution,
                    "parameters": counts | {"total": sum(counts.values())}}
    return section
