"""The model card: GET /model's file, live facts, the video model's section and the token families'."""

from typing import Any

from pydantic import BaseModel, Field

# ---------------------------------------------------------------- model card (GET /model)


class GenerationLimits(BaseModel):
    """This server's caps on a generation request."""

    max_steps: int
    max_batch: int
    max_prompt_chars: int
    queue_size: int = Field(description="Jobs that may wait for a sampler thread")
    worker_threads: int = Field(description="Jobs that run at once")
    request_timeout_s: float = Field(description="Time limit of one job, queueing included")


class QueueState(BaseModel):
    """The sampler's load right now."""

    running: int
    waiting: int
    capacity: int = Field(description="worker_threads + queue_size: beyond this a request gets 429")


class ModelLive(BaseModel):
    """Facts about the model as this server holds it, measured now."""

    loaded: bool
    load_error: str | None = Field(description="Why the model is not loaded, when it is not")
    device: str | None
    model_id: str | None = Field(description="Short SHA-256 of the weights files")
    resolution: int | None = Field(description="Image side in pixels")
    parameters: dict[str, int] | None = Field(description="Parameter counts: vae, text_encoder, denoiser, total")
    samplers: list[str]
    vocabulary: list[str] = Field(description="The words a prompt may use (synonyms such as 'big' are accepted too)")
    limits: GenerationLimits
    queue: QueueState | None


class VideoModelSection(BaseModel):
    """The video model's files and, when loaded, its live facts; its card when models/video-card.json exists."""

    loaded: bool
    load_error: str | None = Field(description="Why the video model is not loaded, when it is not")
    model_id: str | None
    max_frames: int | None
    attention: str | None = Field(description="factorised or joint")
    config: dict[str, Any] | None = Field(description="The video denoiser's config (VideoDiTConfig)")
    text_encoder_config: dict[str, Any] | None
    parameters: dict[str, int] | None = Field(description="text_encoder, denoiser, total (the VAE is the image "
                                                          "model's)")
    training: dict[str, Any] | None = Field(description="The denoiser file's training record: recipe, wall time, "
                                                        "steps, validation, ... (loss curve left out)")
    card_found: bool
    card_error: str | None
    card: dict[str, Any] | None = Field(description="models/video-card.json, when present")


class TokenFamilySection(BaseModel):
    """One token family of §3.4 (autoregressive or masked): its files' configs and training records when readable,
    and, when loaded, its identity and size."""

    loaded: bool
    load_error: str | None = Field(description="Why the family is not loaded (its requests answer 503), when it is not")
    model_id: str | None = Field(description="Short SHA-256 of the tokenizer's and the family's weights files")
    files: list[str] = Field(description="Its weights files in the model directory: the shared VQ tokenizer's, its own")
    config: dict[str, Any] | None = Field(description="The token transformer's config (TokenTransformerConfig)")
    text_encoder_config: dict[str, Any] | None
    tokenizer_config: dict[str, Any] | None = Field(description="The VQ tokenizer's config (VQConfig)")
    grid: int | None = Field(description="Tokens per side")
    tokens: int | None = Field(description="N = grid²: tokens per image, the autoregressive family's sequential "
                                           "forwards")
    codebook_size: int | None = Field(description="K: codes per token (top_k's limit)")
    resolution: int | None = Field(description="Image side in pixels (when loaded)")
    parameters: dict[str, int] | None = Field(description="tokenizer, text_encoder, transformer, total")
    training: dict[str, Any] | None = Field(description="The family file's training record (loss curve left out)")
    tokenizer_training: dict[str, Any] | None = Field(description="The tokenizer file's training record")


class ModelCardResult(BaseModel):
    """The model card file written by `diffusion-lab evaluate`, and the live facts."""

    card_found: bool
    card_error: str | None = Field(description="Why there is no card, when there is none")
    card: dict[str, Any] | None = Field(description="models/model-card.json: name, architecture, training, "
                                                    "vocabulary, defaults, evaluation, generated_at, command")
    live: ModelLive
    video: VideoModelSection | None = Field(None, description="The video model (null when its files are absent)")
    families: dict[str, TokenFamilySection] = Field(
        description="The token families of §3.4 by name (autoregressive, masked), loaded or not; `family` of "
                    "POST /generate picks one")
