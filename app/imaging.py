"""PNG encoding with the generation parameters embedded (the AUTOMATIC1111 `parameters` tEXt chunk), and base64."""

import base64
import io
from collections.abc import Mapping

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

PARAMETERS_KEY = "parameters"
COMPRESS_LEVEL = 6  # fixed, so the same pixels and parameters always give the same bytes

# Request field -> the label AUTOMATIC1111 writes (and tools such as its "PNG Info" tab read back).
LABELS = {
    "steps": "Steps",
    "sampler": "Sampler",
    "guidance_scale": "CFG scale",
    "guidance_rescale": "CFG rescale",
    "eta": "Eta",
    "seed": "Seed",
    "size": "Size",
    "model_hash": "Model hash",
    "model": "Model",
}


def _one_line(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space: the format is line-based."""
    return " ".join(str(text).split())


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return _one_line(value).replace(",", ";")  # a comma would split the value in two when read back


def format_parameters(parameters: Mapping) -> str:
    """A1111 text: the prompt, then `Negative prompt: ...` (when not empty), then `Label: value, ...` in order.

    The keys "prompt" and "negative_prompt" make the first two lines; every other key becomes one
    `Label: value` pair (labels from LABELS, else the key capitalised); None values are left out.
    """
    lines = [_one_line(parameters.get("prompt", ""))]
    negative = _one_line(parameters.get("negative_prompt", ""))
    if negative:
        lines.append(f"Negative prompt: {negative}")
    pairs = [f"{LABELS.get(k, k.replace('_', ' ').capitalize())}: {_value(v)}"
             for k, v in parameters.items() if k not in ("prompt", "negative_prompt") and v is not None]
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def encode_png(image: np.ndarray, parameters: Mapping | None = None) -> bytes:
    """uint8 (H, W, 3) -> PNG bytes with a `parameters` tEXt chunk; deterministic for the same inputs."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    info = PngInfo()
    if parameters is not None:
        info.add_text(PARAMETERS_KEY, format_parameters(parameters))
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(out, format="PNG", pnginfo=info, compress_level=COMPRESS_LEVEL)
    return out.getvalue()


def read_parameters(png: bytes) -> str:
    """The `parameters` text of a PNG written by encode_png; ValueError when it has none."""
    with Image.open(io.BytesIO(png)) as image:
        text = getattr(image, "text", {}).get(PARAMETERS_KEY)
    if text is None:
        raise ValueError("the PNG has no 'parameters' text chunk")
    return text


def decode_png(png: bytes) -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 3)."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def to_base64(data: bytes) -> str:
    """Bytes -> standard base64 text (what JSON carries)."""
    return base64.b64encode(data).decode("ascii")


def from_base64(text: str) -> bytes:
    """Inverse of to_base64; ValueError (binascii.Error) for anything that is not base64."""
    return base64.b64decode(text, validate=True)
