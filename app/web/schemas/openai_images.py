"""The OpenAI Images API as this server speaks it: POST /v1/images/generations and its answers, GET /v1/models.

The request takes the official fields (those for other models' features are accepted where the spec allows and
ignored: quality, style, user, moderation, safety identifier) and ours as extra body fields: seed, negative_prompt,
steps, guidance_scale, sampler. The shapes follow what the official SDKs parse.
"""

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from app.service.models import MODEL_NAME
from app.web.schemas.common import (
    GUIDANCE_METHOD_RULE,
    SCENE_PROMPT_RULES,
    SERVED_LIMIT,
    GuidanceMethod,
    GuidanceScale,
    NegativePrompt,
    Rule,
    Sampler,
    ScenePrompt,
    Seed,
    Steps,
    Strict,
    guidance_method_fits,
    known_words,
    limit_error,
    only,
    seeds_fit,
    steps_limit_error,
)
from app.web.schemas.generation import GenerateRequest
from app.world.prompts import parse_prompt

SEEDS_FIT, _seeds_fit = seeds_fit("n", "image i uses seed + i")
SIZE_SERVED = Rule("size_unavailable", "size must be the model's own image size, WxH with W = H = the `resolution` "
                                       "of GET /api/v1/model (64x64 for the trained model), or auto, which means it")


class ImagesRequest(Strict):
    """POST /v1/images/generations: the official request, and this server's extensions as extra body fields."""

    RULES = (*SCENE_PROMPT_RULES, SEEDS_FIT, SIZE_SERVED, GUIDANCE_METHOD_RULE)

    prompt: ScenePrompt
    model: Literal[MODEL_NAME] | None = Field(None, description=f"`{MODEL_NAME}`, the one model GET /v1/models "
                                                                 "lists; absent = it")
    n: int = Field(1, ge=1, json_schema_extra={SERVED_LIMIT: "max_batch"},
                   description="Images to draw; at most the server's DIFFUSION_LAB_MAX_BATCH")
    size: str = Field("auto", max_length=11, pattern=r"^(auto|[1-9][0-9]{0,4}x[1-9][0-9]{0,4})$",
                      description=f"WIDTHxHEIGHT or auto. {SIZE_SERVED.text}")
    response_format: Literal["b64_json"] | None = Field(
        None, description="b64_json (the default): the server is stateless and keeps no images, so it has no URL "
                          "to give")
    output_format: Literal["png"] | None = Field(None, description="png, the only format")
    background: Literal["auto", "opaque"] | None = Field(None, description="The scenes' background is opaque")
    stream: bool | None = Field(False, description="Answer Server-Sent Events: partial images, then the image")
    partial_images: int | None = Field(None, ge=0, le=3, description="With stream: how many partial images "
                                                                      "(x̂0 previews at evenly spaced steps) to send")
    quality: Literal["low", "medium", "high", "xhigh", "max", "auto", "standard", "hd"] | None = Field(
        None, description="Accepted and ignored")
    style: Literal["vivid", "natural"] | None = Field(None, description="Accepted and ignored")
    moderation: Literal["low", "auto"] | None = Field(None, description="Accepted and ignored")
    output_compression: int | None = Field(None, ge=0, le=100, description="Accepted and ignored (PNG is lossless)")
    user: str | None = Field(None, max_length=256, description="Accepted and ignored")
    safety_identifier: str | None = Field(None, max_length=256, description="Accepted and ignored")
    # this server's extensions (the SDK sends them as extra_body)
    negative_prompt: NegativePrompt = ""
    steps: Steps = 20
    guidance_scale: GuidanceScale = Field(5.0, description="Guidance scale s of EQ MM3.4")
    sampler: Sampler = "dpmpp_2m"
    guidance_method: GuidanceMethod = "cfg"
    seed: Seed | None = Field(None, description=f"Seed of image 0 (image i uses seed + i); absent = random; "
                                                f"{SEEDS_FIT.text}")

    _words = field_validator("prompt", "negative_prompt")(known_words(parse_prompt))
    _seeds = field_validator("seed")(_seeds_fit)
    _method = field_validator("guidance_method")(guidance_method_fits)
    _model = field_validator("model", mode="before")(only(
        {MODEL_NAME}, "model_not_found", f"The model '{{value}}' does not exist: this server serves '{MODEL_NAME}' "
                                       "(GET /v1/models lists it)"))
    _url = field_validator("response_format", mode="before")(only(
        {"b64_json"}, "response_format_unavailable", "response_format '{value}' is not served: this server is "
                                                   "stateless and keeps no images, so it has no URL to give; ask for "
                                                   "b64_json (the default)"))

    def limit_errors(self, max_steps: int, max_batch: int, resolution: int) -> list[dict]:
        """The caps the server's settings put on steps and n, and the model's one size, as pydantic-shaped errors."""
        errors = steps_limit_error(self.steps, max_steps) + limit_error(
            "n", self.n, max_batch, "this server's DIFFUSION_LAB_MAX_BATCH")
        own = f"{resolution}x{resolution}"
        if self.size not in ("auto", own):
            errors.append({"type": SIZE_SERVED.type, "loc": ("size",), "input": self.size,
                           "msg": f"this model draws only {own} images; ask for size '{own}' or 'auto'"})
        return errors

    def generate_request(self) -> GenerateRequest:
        """The same request in /api/v1/generate's words."""
        return GenerateRequest(prompt=self.prompt, negative_prompt=self.negative_prompt, steps=self.steps,
                               guidance_scale=self.guidance_scale, sampler=self.sampler,
                               guidance_method=self.guidance_method, batch_size=self.n, seed=self.seed)


# ---------------------------------------------------------------- answers

Background = Literal["opaque"]
OutputFormat = Literal["png"]


class ImageTokens(BaseModel):
    text_tokens: int = Field(description="The caption words the text encoder read (prompt and negative prompt)")
    image_tokens: int = Field(description="0: no image is read")


class OutputTokens(BaseModel):
    image_tokens: int = Field(description="The latent tokens the DiT drew: (latent side / patch)² per image")
    text_tokens: int = Field(description="0: no text is written")


class ImagesUsage(BaseModel):
    """Token counts in the official shape, measured in this model's own tokens."""

    input_tokens: int
    input_tokens_details: ImageTokens
    output_tokens: int
    output_tokens_details: OutputTokens
    total_tokens: int

    @classmethod
    def of(cls, read: int, drawn: int) -> "ImagesUsage":
        """From the tokens read (caption words) and drawn (latent tokens)."""
        return cls(input_tokens=read, input_tokens_details=ImageTokens(text_tokens=read, image_tokens=0),
                   output_tokens=drawn, output_tokens_details=OutputTokens(image_tokens=drawn, text_tokens=0),
                   total_tokens=read + drawn)


class OpenAIImage(BaseModel):
    b64_json: str = Field(description="The PNG, base64, with its `parameters` chunk and XMP packet")
    revised_prompt: str = Field(description="The caption the model was conditioned on ('' = unconditional)")


class ImagesResponse(BaseModel):
    """The official response, b64_json images only."""

    created: int = Field(description="Unix time, seconds")
    data: list[OpenAIImage]
    background: Background = "opaque"
    output_format: OutputFormat = "png"
    size: str = Field(description="WIDTHxHEIGHT")
    usage: ImagesUsage


Quality = Literal["auto"]  # the events must name one; this server has a single quality


class _ImageEvent(BaseModel):
    b64_json: str
    background: Background = "opaque"
    created_at: int = Field(description="Unix time, seconds")
    output_format: OutputFormat = "png"
    quality: Quality = "auto"
    size: str


class PartialImageEvent(_ImageEvent):
    """Event `image_generation.partial_image`: the x̂0 preview of image 0 at an evenly spaced step."""

    type: Literal["image_generation.partial_image"] = "image_generation.partial_image"
    partial_image_index: int = Field(description="0-based")


class CompletedEvent(_ImageEvent):
    """Event `image_generation.completed`: one per image, each with the request's usage."""

    type: Literal["image_generation.completed"] = "image_generation.completed"
    usage: ImagesUsage


class OpenAIError(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, requests (the queue is full) or server_error")
    param: str | None = Field(description="The request field at fault, if one is")
    code: str | None = Field(description="The rule that failed (e.g. size_unavailable, prompt_unknown_words, "
                                         "less_than_equal, model_not_found) or the refusal (rate_limit_exceeded, ...)")


class OpenAIErrorBody(BaseModel):
    """The official error object, on every refusal (and as the `error` event of a stream that fails)."""

    error: OpenAIError


class ErrorEvent(OpenAIErrorBody):
    """Event `error`: the job failed after the stream started."""

    type: Literal["error"] = "error"


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time the weights were written")
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
