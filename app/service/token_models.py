"""The token families of chapter §3.4 as the server holds them: loading each beside the image model (one shared VQ
tokenizer), its identity, and a warm-up image. A family's request is an ordinary job of the sampling service,
sampled by its loaded TokenFamily (app/pipelines/tokens.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from app.nets.io import WeightsError
from app.pipelines.tokens import FAMILY_FILES, TOKENIZER_FILE, TokenFamily, TokenSettings
from app.service.models import fingerprint


@dataclass
class LoadedTokenFamily:
    """One token family ready to sample, and its identity."""

    generator: TokenFamily
    model_id: str  # short hash of the tokenizer and the family's file
    load_s: float
    warm_up_s: float


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
