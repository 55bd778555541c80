"""The live sampling stream: GET /generate/stream's query and its events."""

from typing import Literal

from pydantic import BaseModel, Field

from app.web.schemas.families import Family
from app.web.schemas.generation import GenerateParameters, GenerateRequest, GenerateResult

# ---------------------------------------------------------------- live sampling stream (§3.3, EQ MM3.1)


class GenerateStreamQuery(GenerateRequest):
    """GET /generate/stream's query: a GenerateRequest, plus whether to send per-step previews."""

    IN_QUERY = True

    previews: bool = Field(True, description="Send small PNGs each step: of x_t, x̂0 (one VAE decode per step) and "
                                             "ε̂ (diffusion), or of the token grid drawn so far (one VQ decode per "
                                             "step)")


class RequestError(BaseModel):
    """One reason a request is refused, as an item of a 422's `detail`."""

    loc: list[str | int] = Field(description="Where: 'query', then the field's name")
    msg: str = Field(description="Why, in words")
    type: str = Field(description="pydantic's error type, e.g. greater_than_equal or prompt_unknown_words")


class GenerateCheck(BaseModel):
    """Whether the stream would take a request; if so, the captions the model will read, if not, why."""

    valid: bool = Field(description="Whether GET /generate/stream would accept these parameters")
    errors: list[RequestError] = Field([], description="What the stream's 422 would list; empty when valid")
    prompt_canonical: str | None = Field(None, description="The caption the model will be conditioned on "
                                                           "('' = unconditional); null when not valid")
    negative_prompt_canonical: str | None = Field(None, description="The caption of the unconditional branch; "
                                                                    "null when not valid")


class TokenGrid(BaseModel):
    """A token family's grid: what its steps fill in (event `start`)."""

    side: int = Field(description="Tokens per side of the grid")
    tokens: int = Field(description="N = side², the tokens of one image (EQ MM3.5's product runs over them)")
    codebook_size: int = Field(description="K: the codes a token is drawn from")
    downsample_factor: int = Field(description="Pixels per token along a side (the VQ tokenizer's f)")
    sequential_forwards: int = Field(description="Network forwards one after another this run takes: N for "
                                                 "autoregressive, the rounds for masked")
    preview: str = Field(description="What a step's preview shows")


class StreamStart(BaseModel):
    """Event `start`: the job was admitted; everything needed to reproduce it."""

    id: str = Field(description="This request's id (uuid4), repeated in every event of the stream")
    family: Family = Field(description="Which model draws (the request's family)")
    parameters: GenerateParameters = Field(description="The request with defaults filled in and the seed used")
    total_steps: int = Field(description="Step events to come: diffusion's steps, the autoregressive grid's rows, "
                                         "the masked family's rounds")
    prompt_canonical: str
    negative_prompt_canonical: str
    previews: bool = Field(description="Whether step events carry preview images")
    preview_seed: int = Field(description="Previews follow image 0 of the batch, the one drawn from this seed")
    resolution: int = Field(description="Image side in pixels")
    latent_shape: list[int] | None = Field(None, description="[c_z, h, w] of one latent (diffusion; null for the "
                                                             "token families)")
    latent_preview: str | None = Field(None, description="How x_t and ε̂ previews map latent values to colours "
                                                         "(diffusion; null for the token families)")
    token_grid: TokenGrid | None = Field(None, description="The token grid (autoregressive and masked; null for "
                                                           "diffusion)")


class StepPreviews(BaseModel):
    """Small PNGs (base64) of image 0 at one step."""

    x_t: str = Field(description="The noisy latent x_t itself (latent-size PNG; see start.latent_preview)")
    x0_hat: str = Field(description="The predicted clean sample x̂0 decoded by the VAE (image-size PNG)")
    eps_hat: str = Field(description="The guided noise estimate ε̂ (latent-size PNG, mapped like x_t)")


class StepBase(BaseModel):
    """Event `step` of every stream and family: which step of how many, and the time."""

    id: str = Field(description="The stream's id")
    index: int = Field(description="0-based step number (within its method, on the video stream)")
    total: int = Field(description="Steps of this run (of this method, on the video stream)")
    elapsed_s: float = Field(description="Seconds since a worker picked the job up")
    remaining_s: float = Field(description="Estimated seconds of sampling left: mean time per step x steps left "
                                           "(every method of the run included)")


class StepEvent(StepBase):
    """Event `step` of a diffusion stream, image or video: one denoising step done, and where it is (EQ MM3.1)."""

    t: int = Field(description="Timestep of this step's input x_t")
    abar_t: float = Field(description="ᾱ_t of EQ MM3.1")
    sqrt_abar_t: float = Field(description="√ᾱ_t, the weight of the clean sample in x_t (EQ MM3.1)")
    sqrt_one_minus_abar_t: float = Field(description="√(1-ᾱ_t), the weight of the noise in x_t (EQ MM3.1)")


class StreamStep(StepEvent):
    """Event `step` of the image stream (diffusion): the step, with previews of image 0."""

    previews: StepPreviews | None = Field(description="None when previews=false")


class TokenStreamStep(StepBase):
    """Event `step` of the image stream for a token family: a row of the grid drawn (autoregressive) or a round
    done (masked), for image 0."""

    family: Literal["autoregressive", "masked"]
    forwards: int = Field(description="Network forwards so far, one after another (autoregressive: one per token; "
                                      "masked: one per round)")
    tokens_drawn: int = Field(description="Tokens of image 0's grid drawn so far (of start.token_grid.tokens)")
    tokens_new: int = Field(description="Tokens this step drew (masked: kept at this round; the rest re-masked)")
    grid: list[int] = Field(description="Image 0's grid so far, in raster order: codebook indices, -1 where no "
                                        "token is drawn yet")
    new_positions: list[int] = Field(description="Raster positions (row x side + column) of the tokens this step "
                                                 "drew")
    preview: str | None = Field(description="Image 0's grid so far decoded (image-size PNG, base64; see "
                                            "start.token_grid.preview); null when previews=false")


class StreamResult(GenerateResult):
    """Event `result`: the same payload as POST /generate, with the stream's id."""

    id: str


class StreamError(BaseModel):
    """Event `error`: the job failed after the stream started."""

    id: str
    status: int = Field(description="The HTTP status the REST endpoint would have answered: 503 (time limit, "
                                    "shutting down) or 500")
    detail: str
