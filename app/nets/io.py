"""Weights files: safetensors with the config and extras as JSON metadata, so a file is self-contained."""

import json
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

FORMAT = "diffusion-lab/1"
M = TypeVar("M", bound=nn.Module)


class WeightsError(RuntimeError):
    """A weights file is missing, unreadable or does not match the module it is loaded into."""


def save_module(path: str | Path, module: nn.Module, config: Any, extra: dict | None = None) -> Path:
    """Write the module's state dict, with {"config", "extra", "class"} as JSON metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}
    meta = {
        "format": FORMAT,
        "class": type(module).__name__,
        "config": json.dumps(asdict(config) if is_dataclass(config) else dict(config)),
        "extra": json.dumps(extra or {}, default=str),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    tmp.chmod(0o644)  # safetensors creates 0600 files; weights are meant to be shared
    tmp.replace(path)  # never leave a half-written file under the real name
    return path


def read_metadata(path: str | Path) -> dict:
    """The file's metadata with "config" and "extra" decoded; raises WeightsError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        meta["config"] = json.loads(meta["config"])
        meta["extra"] = json.loads(meta.get("extra", "{}"))
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise WeightsError(f"cannot read weights file {path}: {err}") from err
    return meta


def load_module(path: str | Path, cls: type[M], config_cls: type, device: str | torch.device = "cpu") -> tuple[M, dict]:
    """Rebuild `cls(config_cls(**meta["config"]))` from the file alone; returns (module in eval mode, extra)."""
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("class") not in (None, cls.__name__):
        raise WeightsError(f"weights file {path} holds a {meta['class']}, not a {cls.__name__}")
    try:
        state = load_file(str(path), device=str(device))
        module = cls(config_cls(**meta["config"]))
        module.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, TypeError, RuntimeError) as err:
        raise WeightsError(f"cannot load weights file {path}: {err}") from err
    return module.to(device).eval(), meta["extra"]
