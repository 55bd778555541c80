"""PNG encoding with the generation parameters embedded (the AUTOMATIC1111 `parameters` tEXt chunk), animations
(APNG, GIF) of a clip's frames, and base64."""

import base64
import io
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageSequence
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


# ------------------------------------------------------------------------------------------ animations

ANIMATION_MIME = {"apng": "image/apng", "gif": "image/gif"}
FRAME_MS = 125  # 8 frames per second


def animation_frame_ms(fmt: str, frame_ms: int = FRAME_MS) -> int:
    """The frame duration the file will hold: GIF counts in hundredths of a second (125 ms is written as 120)."""
    return frame_ms // 10 * 10 if fmt == "gif" else frame_ms


def encode_animation(frames: np.ndarray, fmt: str = "apng", frame_ms: int = FRAME_MS) -> bytes:
    """uint8 (F, H, W, 3) -> an endlessly looping APNG (lossless) or GIF (a 256-colour palette per frame).

    Pillow merges identical consecutive frames into one shown for their summed duration, so the file may
    hold fewer frames than given while playing the same; the playing time is always F x frame_ms.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 1:
        raise ValueError(f"expected uint8 (F, H, W, 3) frames, got {frames.dtype} {frames.shape}")
    if fmt not in ANIMATION_MIME:
        raise ValueError(f"format must be one of {sorted(ANIMATION_MIME)}, got {fmt!r}")
    images = [Image.fromarray(np.ascontiguousarray(frame)) for frame in frames]
    options = {"format": "PNG", "compress_level": COMPRESS_LEVEL} if fmt == "apng" else {"format": "GIF"}
    out = io.BytesIO()
    images[0].save(out, save_all=True, append_images=images[1:], duration=animation_frame_ms(fmt, frame_ms), loop=0,
                   **options)
    return out.getvalue()


def decode_animation(data: bytes) -> tuple[np.ndarray, list[float]]:
    """An APNG or GIF -> (uint8 (F, H, W, 3) frames as shown, each frame's duration in ms)."""
    with Image.open(io.BytesIO(data)) as image:
        shown = [(np.asarray(frame.convert("RGB")), float(frame.info.get("duration", 0)))
                 for frame in ImageSequence.Iterator(image)]
    return np.stack([f for f, _ in shown]), [d for _, d in shown]
