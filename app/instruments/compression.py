"""Latent vs pixel diffusion (instrument MM3.1): what a VAE's latent saves on every denoising step (EQ MM3.3)."""

from __future__ import annotations

from dataclasses import dataclass

RGB = 3  # pixel-space channels


@dataclass(frozen=True)
class Preset:
    """A named (f, c_z) pair the page offers as a button."""

    key: str
    name: str
    f: int
    channels: int
    note: str


PRESETS = (
    Preset("pixel", "Pixel space", 1, RGB, "no autoencoder: the denoiser works on the RGB pixels themselves"),
    Preset("sd", "Stable Diffusion", 8, 4, "VAE with f = 8 and 4 latent channels"),
    Preset("sd3", "SD3", 8, 16, "f = 8 with 16 latent channels: better reconstructions, less compression"),
)


@dataclass(frozen=True)
class TensorCost:
    """One tensor the denoiser sees at every step, cut into patch tokens for a DiT."""

    shape: tuple[int, int, int]  # (H, W, C)
    values: int  # H * W * C
    grid_positions: int  # H * W
    tokens: int  # (H / p) * (W / p)
    values_per_token: int  # p * p * C
    attention_pairs: int  # tokens ** 2: one score per (query, key) pair per head and layer


@dataclass(frozen=True)
class CurvePoint:
    """Cost of the latent at one downsampling factor, relative to pixel space at the same patch size."""

    f: int
    ratio: float  # 3 f^2 / c_z
    values: int
    tokens: int
    attention_pairs: int
    values_fraction: float  # latent values / pixel values
    attention_fraction: float  # latent attention pairs / pixel attention pairs


@dataclass(frozen=True)
class CompressionReport:
    """Pixel tensor vs latent tensor for one (H, W, f, c_z, p), and the per-step savings."""

    height: int
    width: int
    f: int
    channels: int
    patch: int
    pixel: TensorCost
    latent: TensorCost
    ratio: float  # EQ MM3.3: 3 f^2 / c_z
    grid_reduction: int  # f^2
    token_reduction: int  # f^2 at a fixed patch size
    attention_reduction: int  # f^4
    values_fraction: float  # 1 / ratio
    attention_fraction: float  # 1 / f^4
    curve: tuple[CurvePoint, ...]
    presets: tuple[Preset, ...]


def compression_ratio(f: int, channels: int) -> float:
    """EQ MM3.3: pixel values over latent values, 3 H W / (c_z (H/f)(W/f)) = 3 f^2 / c_z."""
    if f < 1 or channels < 1:
        raise ValueError("f and channels must be positive")
    return RGB * f * f / channels


def check_sizes(height: int, width: int, f: int, patch: int) -> None:
    """Raise ValueError unless f divides H and W and the patch divides the latent grid."""
    if min(height, width, f, patch) < 1:
        raise ValueError("sizes must be positive")
    if height % f or width % f:
        raise ValueError(f"f = {f} must divide height {height} and width {width}")
    if (height // f) % patch or (width // f) % patch:
        raise ValueError(f"patch {patch} must divide the latent grid {height // f} x {width // f}")


def tensor_cost(height: int, width: int, channels: int, patch: int) -> TensorCost:
    """Values, grid positions and DiT tokens of an (H, W, C) tensor cut into p x p patches."""
    if height % patch or width % patch:
        raise ValueError(f"patch {patch} must divide {height} x {width}")
    tokens = (height // patch) * (width // patch)
    return TensorCost(
        shape=(height, width, channels),
        values=height * width * channels,
        grid_positions=height * width,
        tokens=tokens,
        values_per_token=patch * patch * channels,
        attention_pairs=tokens * tokens,
    )


def valid_factors(height: int, width: int, patch: int, f_max: int = 64) -> list[int]:
    """Every f in 1..f_max that divides H and W and leaves a latent grid the patch divides."""
    factors = []
    for f in range(1, f_max + 1):
        try:
            check_sizes(height, width, f, patch)
        except ValueError:
            continue
        factors.append(f)
    return factors


def cost_curve(height: int, width: int, channels: int, patch: int, f_max: int = 64) -> list[CurvePoint]:
    """The latent's cost over every valid f at this c_z, relative to pixel space (f = 1, 3 channels)."""
    pixel = tensor_cost(height, width, RGB, patch)
    points = []
    for f in valid_factors(height, width, patch, f_max):
        latent = tensor_cost(height // f, width // f, channels, patch)
        points.append(
            CurvePoint(
                f=f,
                ratio=compression_ratio(f, channels),
                values=latent.values,
                tokens=latent.tokens,
                attention_pairs=latent.attention_pairs,
                values_fraction=latent.values / pixel.values,
                attention_fraction=latent.attention_pairs / pixel.attention_pairs,
            )
        )
    return points


def compare(height: int, width: int, f: int, channels: int, patch: int) -> CompressionReport:
    """EQ MM3.3 worked out for one setting: pixel vs latent tensor, tokens and attention cost per step."""
    check_sizes(height, width, f, patch)
    if channels < 1:
        raise ValueError("channels must be positive")
    pixel = tensor_cost(height, width, RGB, patch)
    latent = tensor_cost(height // f, width // f, channels, patch)
    return CompressionReport(
        height=height,
        width=width,
        f=f,
        channels=channels,
        patch=patch,
        pixel=pixel,
        latent=latent,
        ratio=compression_ratio(f, channels),
        grid_reduction=pixel.grid_positions // latent.grid_positions,
        token_reduction=pixel.tokens // latent.tokens,
        attention_reduction=pixel.attention_pairs // latent.attention_pairs,
        values_fraction=latent.values / pixel.values,
        attention_fraction=latent.attention_pairs / pixel.attention_pairs,
        curve=tuple(cost_curve(height, width, channels, patch)),
        presets=PRESETS,
    )


def page_context() -> dict:
    """Answers for the page's check-yourself questions, from the functions above (the chapter's 512 x 512 example)."""
    sd = compare(512, 512, 8, 4, 1)
    return {
        "quiz_pixel_values": sd.pixel.values,
        "quiz_sd_ratio": sd.ratio,
        "quiz_sd_grid_reduction": sd.grid_reduction,
        # the statement: diffusing the VAE latent instead of the pixels is what gives the 48x smaller tensor
        "quiz_latent": "true" if sd.pixel.values / sd.latent.values == 48 else "false",
        "quiz_sd3_ratio": compression_ratio(8, 16),
    }
