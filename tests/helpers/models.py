"""Models and settings for tests: tiny random weights written the way training writes them, and test settings."""

from pathlib import Path

import torch

from app.config import Settings
from app.diffusion.schedule import NoiseSchedule
from app.nets import DIT_SIZES, TEXT_SIZES, VAE, VAE_SIZES, DiT, TextEncoder, save_module
from app.nets.token_transformer import TOKEN_SIZES, CaptionedTokens, CaptionedTokensConfig
from app.nets.video_dit import VideoDiT
from app.nets.vq import VQ_SIZES, VQTokenizer
from app.pipelines.tokens import FAMILY_FILES, TOKENIZER_FILE
from app.world.scenes import VOCAB

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED_MODELS = REPO_ROOT / "models"


def settings_for_tests(**overrides) -> Settings:
    """Settings for tests: no trained weights unless a test asks for them."""
    return Settings(**{"load_model": False, "compile": "off", **overrides})  # compiling takes half a minute


def write_tiny_model(directory: Path, resolution: int = 32, seed: int = 0, vocab_size: int = len(VOCAB)) -> Path:
    """A randomly initialised VAE, caption encoder and DiT, saved the way training saves them; returns directory.

    The DiT's zero-initialised gates and output are opened (adaLN-Zero leaves a fresh DiT predicting 0),
    so its output depends on the noise, the timestep and the caption. A vocab_size below len(VOCAB) makes a
    caption encoder from before the later words.
    """
    torch.manual_seed(seed)
    vae = VAE(VAE_SIZES["tiny"]())
    text = TextEncoder(TEXT_SIZES["tiny"](vocab_size=vocab_size))
    dit = DiT(DIT_SIZES["tiny"](latent_size=resolution // vae.config.downsample_factor,
                                latent_channels=vae.config.latent_channels, context_dim=text.config.width))
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if "adaLN" in name or name.startswith("final."):
                p.normal_(std=0.05)
    directory.mkdir(parents=True, exist_ok=True)
    save_module(directory / "vae.safetensors", vae, vae.config)
    save_module(directory / "text_encoder.safetensors", text, text.config)
    save_module(directory / "denoiser.safetensors", dit, dit.config,
                {"schedule": NoiseSchedule.make().config(), "prediction": "v"})
    write_tiny_video_model(directory, text, dit)
    write_tiny_token_models(directory, resolution, vocab_size)
    return directory


def write_tiny_token_models(directory: Path, resolution: int = 32, vocab_size: int = len(VOCAB)) -> Path:
    """A random VQ tokenizer (f = 4) and the autoregressive and masked models on its tokens, as training saves them."""
    tokenizer = VQTokenizer(VQ_SIZES["tiny"]())
    save_module(directory / TOKENIZER_FILE, tokenizer, tokenizer.config)
    grid = resolution // tokenizer.config.downsample_factor
    for family, file in FAMILY_FILES.items():
        text = TEXT_SIZES["tiny"](vocab_size=vocab_size)
        config = CaptionedTokensConfig(text, TOKEN_SIZES["tiny"](codebook_size=tokenizer.codebook_size, grid=grid,
                                                                  causal=family == "autoregressive",
                                                                  context_dim=text.width))
        model = CaptionedTokens(config)
        save_module(directory / file, model, config, {"family": family})
    return directory


def write_tiny_video_model(directory: Path, text: TextEncoder, dit: DiT, frames: int = 8) -> Path:
    """The video model's two files beside the image model's: its DiT wraps `dit`, its temporal gates opened."""
    video = VideoDiT.from_image_dit(dit, frames=frames)
    with torch.no_grad():
        for name, p in video.named_parameters():
            if name.startswith("temporal.") and "adaLN" in name:
                p.normal_(std=0.05)
    save_module(directory / "video_text_encoder.safetensors", text, text.config)
    save_module(directory / "video_denoiser.safetensors", video, video.config,
                {"schedule": NoiseSchedule.make().config(), "prediction": "v"})
    return directory


def model_settings(model_dir: Path, **overrides) -> Settings:
    """Settings that load the model in model_dir on the CPU, one torch thread (tiny tensors, shared cores)."""
    return settings_for_tests(**{"model_dir": model_dir, "load_model": True, "device": "cpu", "torch_threads": 1,
                            **overrides})


