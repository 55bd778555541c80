"""Settings from environment variables (DIFFUSION_LAB_*), read once and cached."""

import json
import os
import re
import sys
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

ENV_PREFIX = "DIFFUSION_LAB_"
REPO_ROOT = Path(__file__).resolve().parent.parent
# An installed wheel carries templates/, static/ and bench/results/ as data files under <prefix>/share/diffusion-lab/.
SHARE_DIR = Path(sys.prefix) / "share" / "diffusion-lab"
_ORIGIN = re.compile(r"https?://[^/\s]+")


def asset_dir(name: str) -> Path:
    """templates/, static/, bench/results/, vendor/dist/ or models/: the source checkout's when running from one, else
    the installed copy."""
    in_checkout = (REPO_ROOT / "pyproject.toml").is_file()
    return (REPO_ROOT if in_checkout else SHARE_DIR) / name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model_dir: Path = asset_dir("models")
    templates_dir: Path = asset_dir("templates")
    static_dir: Path = asset_dir("static")
    bench_results_dir: Path = Field(asset_dir("bench/results"),
                                    description="recorded benchmark results the /benchmarks page shows (scaling.json)")
    vendor_dir: Path = Field(asset_dir("vendor/dist"),
                             description="Pyodide and the snippet editor, as `make vendor` built them")
    load_model: bool = True
    max_batch: int = Field(8, ge=1, le=64)
    max_steps: int = Field(100, ge=1, le=1000)
    queue_size: int = Field(16, ge=1, le=1024)
    request_timeout_s: float = Field(120.0, gt=0, le=3600)
    worker_threads: int = Field(1, ge=1, le=64)
    batch_rows: int = Field(32, ge=1, le=256, description="images one shared sampling batch may hold; 1 = no merging")
    torch_threads: int = Field(0, ge=0, le=256, description="0 = torch's default")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    root_path: str = ""
    log_format: Literal["text", "json"] = "text"
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins allowed to call the API from a browser; comma-separated")
    api_key: SecretStr | None = Field(None, description="when set, /api/v1/generate* needs it")
    shutdown_grace_s: float = Field(8.0, ge=0, le=600, description="after SIGTERM, time running jobs get to finish")
    compile: Literal["auto", "on", "off"] = Field(
        "auto", description="compile the sampler's networks (AOTInductor) in the background once ready (auto: on "
                            "the CPU)")
    compile_cache_dir: Path | None = Field(None, description="where the compiled networks are kept between starts "
                                                             "(default: diffusion-lab-compiled in the temp folder)")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value):
        """A comma-separated list (or a JSON list) of origins such as https://lab.example.org."""
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("[") else value.split(",")
        origins = [str(v).strip() for v in value if str(v).strip()]
        for origin in origins:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], no path, no trailing slash")
        return origins

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value):
        """An empty (or blank) DIFFUSION_LAB_API_KEY means no key, not a key that is the empty string."""
        return None if isinstance(value, str) and not value.strip() else value


class ConfigError(Exception):
    """Settings that cannot be used; the message names each bad variable."""


def describe_errors(err: ValidationError) -> str:
    """One line per bad field, named as its environment variable; the API key's value is never echoed."""
    lines = []
    for e in err.errors():
        field = str(e["loc"][0]) if e["loc"] else "?"
        shown = "<hidden>" if field == "api_key" else repr(e.get("input"))
        lines.append(f"{ENV_PREFIX}{field.upper()}={shown}: {e['msg']}")
    return "\n".join(lines)


def load_settings(**overrides) -> Settings:
    """Settings from the environment (and overrides), or ConfigError with a message fit for an operator."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(describe_errors(err)) from None
    except SettingsError as err:  # a list field whose value starts like JSON but is not
        raise ConfigError(f"{err}: {err.__cause__}" if err.__cause__ else str(err)) from None


def unknown_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """DIFFUSION_LAB_* variables that name no setting (a typo is otherwise silently ignored)."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(k for k in environ if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)


@lru_cache
def get_settings() -> Settings:
    return load_settings()
