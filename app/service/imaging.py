"""PNG encoding with the generation parameters embedded (the AUTOMATIC1111 `parameters` tEXt chunk) and an XMP
packet saying the picture was made by a trained model, animations (APNG, GIF) of a clip's frames, and base64."""

import base64
import io
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageSequence
from PIL.PngImagePlugin import PngInfo

PARAMETERS_KEY = "parameters"
XMP_KEY = "XML:com.adobe.xmp"  # the iTXt keyword under which PNG carries XMP (Adobe's XMP spec, part 3)
# IPTC's digital source type for media a trained model produced; readers (exiftool, C2PA tools) show it as such.
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
XMP_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
    f' Iptc4xmpExt:DigitalSourceType="{TRAINED_ALGORITHMIC_MEDIA}"/>'
    '</rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
)
COMPRESS_LEVEL = 6  # fixed, so the same pixels and parameters always give the same bytes

# Request field -> the label AUTOMATIC1111 writes (and tools such as its "PNG Info" tab read back).
LABELS = {
    "steps": "Steps",
    "sampler": "Sampler",
    "guidance_scale": "CFG scale",
    "guidance_rescale": "CFG rescale",
    "guidance_method": "Guidance method",
    "eta": "Eta",
    "seed": "Seed",
    "size": "Size",
    "model_hash": "Model hash",
    "model": "Model",
}
# Our sampler -> the name AUTOMATIC1111 gives it, in its API and in the chunk (so its readers know the sampler).
SAMPLER_NAMES = {"dpmpp_2m": "DPM++ 2M", "ddim": "DDIM", "ddpm": "DDPM"}
VALUE_NAMES = {"sampler": SAMPLER_NAMES}  # field -> how A1111 writes its values


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
    `Label: value` pair (labels from LABELS, else the key capitalised; samplers by A1111's names); None values are
    left out.
    """
    lines = [_one_line(parameters.get("prompt", ""))]
    negative = _one_line(parameters.get("negative_prompt", ""))
    if negative:
        lines.append(f"Negative prompt: {negative}")
    pairs = [f"{LABELS.get(k, k.replace('_', ' ').capitalize())}: {_value(VALUE_NAMES.get(k, {}).get(v, v))}"
             for k, v in parameters.items() if k not in ("prompt", "negative_prompt") and v is not None]
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def _png_info(parameters: Mapping | None) -> PngInfo:
    """The text chunks every PNG of this server carries: the parameters (when given), then the XMP packet."""
    info = PngInfo()
    if parameters is not None:
        info.add_text(PARAMETERS_KEY, format_parameters(parameters))
    info.add_itxt(XMP_KEY, XMP_PACKET)
    return info


def encode_png(image: np.ndarray, parameters: Mapping | None = None) -> bytes:
    """uint8 (H, W, 3) -> PNG bytes with a `parameters` tEXt chunk and the XMP packet; deterministic for the same
    inputs."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(out, format="PNG", pnginfo=_png_info(parameters),
                                                      compress_level=COMPRESS_LEVEL)
    return out.getvalue()


def read_png_text(png: bytes) -> dict[str, str]:
    """The text chunks a PNG holds before its pixels (where encode_png writes them), read without decoding a pixel;
    ValueError for anything that is not a PNG."""
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            return {key: value for key, value in image.info.items() if isinstance(value, str)}
    except (OSError, SyntaxError) as err:  # Pillow's words for "not an image it can open"
        raise ValueError(f"not a PNG file: {err}") from None


def read_parameters(png: bytes) -> str:
    """The `parameters` text of a PNG written by encode_png; ValueError when it has none."""
    text = read_png_text(png).get(PARAMETERS_KEY)
    if text is None:
        raise ValueError("the PNG has no 'parameters' text chunk")
    return text


def parse_parameters(text: str) -> dict[str, str]:
    """A1111 text read back the way AUTOMATIC1111 reads it: `Prompt`, `Negative prompt`, and each `Label: value`
    of the last line as text, `Size` split into `Size-1` (width) and `Size-2` (height)."""
    *head, last = text.split("\n")
    pairs = [pair.partition(": ") for pair in last.split(", ")]
    if not all(sep for _, sep, _ in pairs):  # no settings line: every line is the prompt's
        head, pairs = [*head, last], []
    negative_at = next((i for i, line in enumerate(head) if line.startswith("Negative prompt: ")), len(head))
    found = {"Prompt": "\n".join(head[:negative_at]),
             "Negative prompt": "\n".join(head[negative_at:]).removeprefix("Negative prompt: ")}
    for label, _, value in pairs:
        width, x, height = value.partition("x")
        if label == "Size" and x:
            found["Size-1"], found["Size-2"] = width, height
        else:
            found[label] = value
    return found


def decode_png(png: bytes, max_side: int | None = None) -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 3); ValueError for bytes that are not a PNG, or one wider or taller than max_side
    (checked from its header, before its pixels are unpacked)."""
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
            if max_side is not None and max(image.size) > max_side:
                raise ValueError(f"the image is {image.size[0]} x {image.size[1]} pixels; at most {max_side} a side")
            return np.array(image.convert("RGB"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:  # PIL's errors for broken or hostile files
        raise ValueError(f"not a PNG image PIL can read: {err}") from None


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
    """uint8 (F, H, W, 3) -> an endlessly looping APNG (lossless, with the XMP packet) or GIF (a 256-colour palette per
    frame).

    Pillow merges identical consecutive frames into one shown for their summed duration, so the file may
    hold fewer frames than given while playing the same; the playing time is always F x frame_ms.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) < 1:
        raise ValueError(f"expected uint8 (F, H, W, 3) frames, got {frames.dtype} {frames.shape}")
    if fmt not in ANIMATION_MIME:
        raise ValueError(f"format must be one of {sorted(ANIMATION_MIME)}, got {fmt!r}")
    images = [Image.fromarray(np.ascontiguousarray(frame)) for frame in frames]
    options = ({"format": "PNG", "compress_level": COMPRESS_LEVEL, "pnginfo": _png_info(None)} if fmt == "apng"
               else {"format": "GIF"})
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
