"""Settings from environment variables (DIFFUSION_LAB_*), read once and cached."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIFFUSION_LAB_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model_dir: Path = REPO_ROOT / "models"
    load_model: bool = True
    max_batch: int = Field(8, ge=1, le=64)
    max_steps: int = Field(100, ge=1, le=1000)
    queue_size: int = Field(16, ge=1, le=1024)
    request_timeout_s: float = Field(120.0, gt=0, le=3600)
    worker_threads: int = Field(1, ge=1, le=64)
    torch_threads: int = Field(0, ge=0, le=256, description="0 = torch's default")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    root_path: str = ""


@lru_cache
def get_settings() -> Settings:
    return Settings()
