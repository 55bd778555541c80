"""Text-to-video: POST /generate/video, its stream, and the served video model's attention timed."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.lab.timing import MIN_ROUNDS
from app.web.schemas.common import (
    SERVED_LIMIT,
    Caption,
    Eta,
    GuidanceRescale,
    GuidanceScale,
    NegativePrompt,
    Rule,
    Sampler,
    Seed,
    Steps,
    Strict,
    Timings,
    known_words,
    limit_error,
    seeds_fit,
    steps_limit_error,
)
from app.web.schemas.stream import StepEvent
from app.web.schemas.timing import RecordedTiming, Remeasure, TimingComparison, TimingConditions, TimingSpread
from app.world.clips import parse_video_prompt, video_vocabulary_help

# ---------------------------------------------------------------- text-to-video (§3.4, EQ MM3.6)

MAX_VIDEO_FRAMES = 16  # what the OpenAPI document states when no video model is loaded
MAX_ATTENTION_ROUNDS = 9
AnimationFormat = Literal["apng", "gif"]
ClipMethod = Literal["video", "per_frame"]
Frames = Annotated[int, Field(ge=2, json_schema_extra={SERVED_LIMIT: "max_frames"})]  # the loaded model's
CLIP_PROMPT_RULES = (
    Rule("prompt_unknown_words", f"Every word of a clip prompt must be one the clip grammar knows. "
                                 f"{video_vocabulary_help()}"),
    Rule("prompt_invalid", "A clip prompt names at most one shape, colour, size, direction and start (once, after "
                           "'from the'), and a shape whenever it names any of them"),
)
SEEDS_FIT, _seeds_fit = seeds_fit("frames", "the baseline's frame k uses seed + k")


def frames_limit_error(frames: int, max_frames: int) -> list[dict]:
    """A pydantic-shaped error when frames exceeds what the loaded video model knows, else none."""
    return limit_error("frames", frames, max_frames, "the frames the loaded video model was trained on")


class VideoRequest(Strict):
    """One text-to-clip request; the server's caps (steps, the model's frames) are checked by limit_errors()."""

    RULES = (*CLIP_PROMPT_RULES, SEEDS_FIT)

    prompt: Caption = Field(examples=["a small red circle moving right from the left"],
                            description="The clip, in the clip grammar's words: '{size} {colour} {shape} moving "
                                        "{direction} from the {start}'; empty or blank = an unconditional clip. "
                                        + " ".join(rule.text for rule in CLIP_PROMPT_RULES))
    negative_prompt: NegativePrompt = ""
    steps: Steps = 20
    guidance_scale: GuidanceScale = Field(5.0, description="Guidance scale s of EQ MM3.4")
    guidance_rescale: GuidanceRescale = 0.0
    sampler: Sampler = "dpmpp_2m"
    eta: Eta = 0.0
    frames: Frames = Field(8, description="Frames of the clip; at most the loaded video model's (8 for the served one)")
    seed: Seed | None = Field(None, description=f"Seed of the clip's noise; absent = random; {SEEDS_FIT.text}")
    compare: bool = Field(False, description="Also sample the per-frame baseline: the image model draws every "
                                             "frame from its own noise")
    format: AnimationFormat = Field("apng", description="The animation's file format: apng (lossless) or gif")
    include_frames: bool = Field(True, description="Also return every frame as a PNG")

    _words = field_validator("prompt", "negative_prompt")(known_words(parse_video_prompt))
    _seeds = field_validator("seed")(_seeds_fit)

    def limit_errors(self, max_steps: int, max_frames: int) -> list[dict]:
        """Errors shaped like pydantic's for the server's step cap and the loaded model's frame count."""
        return steps_limit_error(self.steps, max_steps) + frames_limit_error(self.frames, max_frames)


class VideoParameters(VideoRequest):
    """The request as it was run: every default filled in, and the seed that was used."""

    seed: Seed = Field(description="Seed of the clip's noise")


class VideoStreamQuery(VideoRequest):
    """GET /generate/video/stream's query: the fields of POST /generate/video's body."""

    IN_QUERY = True


class ParsedClipPrompt(BaseModel):
    """The prompt as the clip grammar reads it (None: left open)."""

    model_config = ConfigDict(from_attributes=True)

    shape: str | None
    colour: str | None
    size: str | None
    direction: str | None
    start: str | None = Field(description="Where the shape starts, e.g. 'top left'")


class Animation(BaseModel):
    """The clip as one looping animation file."""

    mime: Literal["image/apng", "image/gif"]
    base64: str = Field(description="The file, base64 (identical consecutive frames are merged, durations summed)")
    frame_ms: int = Field(description="How long each frame shows (GIF counts in hundredths of a second)")


class ClipMetricsResult(BaseModel):
    """VBench-style measures of one clip, read by the app's program judge (app/measure/video.py)."""

    frames: int
    tracked_frames: int = Field(description="Frames in which the judge found an object, whether or not it names "
                                            "its shape")
    temporal_flickering: float = Field(description="1 - mean |frame k+1 - frame k| / 255 (1 = no change)")
    mean_abs_frame_diff: float = Field(description="The same difference, 0..1")
    subject_consistency: float = Field(description="Share of frames whose judged shape, colour and size are the "
                                                   "clip's most common ones")
    motion_smoothness: float = Field(description="exp(-rms / 4 px) of the centroid around the best straight line")
    path_rms_px: float | None
    mean_jump_px: float | None = Field(description="Mean frame-to-frame centroid displacement, pixels")
    mean_jump_frame_widths: float | None
    velocity_px: tuple[float, float] | None = Field(description="Fitted (dx, dy) per frame, y down")
    direction: str | None = Field(description="One of the 8 directions, 'still', or null when untracked")
    shape: str | None
    colour: str | None
    size: str | None
    start: str | None = Field(description="Judged position of the first frame")
    frame_shapes: list[str | None] = Field(description="The judged shape of every frame (null: none fits)")
    centroids: list[tuple[float, float] | None]
    adherence: dict[str, bool] = Field(description="Per attribute the prompt names, 'shape_every_frame' and 'all', "
                                                   "whether the clip shows it")


class VideoClip(BaseModel):
    """One clip: by the space-time model (`video`) or by the image model frame by frame (`per_frame`)."""

    method: ClipMethod
    caption: str = Field(description="The caption the network was conditioned on")
    animation: Animation
    frames: list[str] = Field(description="Every frame as a PNG, base64 (empty when include_frames is false)")
    metrics: ClipMetricsResult
    timings: dict[str, float] = Field(description="sampling_s, decode_s, total_s, network_forwards of this clip")


class VideoTimings(Timings):
    """Where the time went: the queue, the clips sampled and decoded, measured and encoded."""

    run_s: float = Field(description="The job on the sampler thread: the clips sampled and decoded")
    metrics_s: float = Field(description="Measuring the clips, on the sampler thread after the job")
    encode_s: float = Field(description="PNG and animation encoding")


class VideoResult(BaseModel):
    """A clip (and, with compare, the per-frame baseline) with everything needed to reproduce it."""

    prompt: str = Field(description="The canonical caption of the prompt")
    parsed: ParsedClipPrompt
    seed: int
    parameters: VideoParameters
    model_id: str = Field(description="Short SHA-256 of the VAE and the video weights files")
    video: VideoClip
    baseline: VideoClip | None = Field(description="The per-frame baseline (compare=true), else null")
    timings: VideoTimings


class VideoStreamStart(BaseModel):
    """Event `start`: the job was admitted."""

    id: str = Field(description="This request's id (uuid4), repeated in every event of the stream")
    total_steps: int = Field(description="Denoising steps of the whole run: steps x methods")
    frames: int
    methods: list[ClipMethod] = Field(description="['video'], or ['video', 'per_frame'] with compare, in the "
                                                  "order they are sampled")
    prompt: str = Field(description="The canonical caption of the prompt")
    parameters: VideoParameters = Field(description="The request with defaults filled in and the seed used")


class VideoStreamStep(StepEvent):
    """Event `step` of the video stream: one denoising step of one method, with every frame's x̂0."""

    method: ClipMethod
    preview: str = Field(description="PNG (base64) of every frame's x̂0 latent side by side, left to right: latent "
                                     "channels 0-2 as RGB over -3..3 (not decoded)")


class VideoStreamResult(VideoResult):
    """Event `result`: the same payload as POST /generate/video, with the stream's id."""

    id: str


class AttentionQuery(Strict):
    """The clip length whose attention is timed, how many interleaved rounds, and whether to measure again."""

    IN_QUERY = True

    frames: Frames = Field(8, description="Frames T_f; at most the loaded video model's")
    repeats: int = Field(5, ge=MIN_ROUNDS, le=MAX_ATTENTION_ROUNDS,
                         description="Interleaved rounds at most (each times both networks once, after one warm-up "
                                     "each); fewer when the time budget runs out. The median and quartiles are "
                                     "reported")
    remeasure: Remeasure = False


class AttentionTimingResult(BaseModel):
    """EQ MM3.6 on the served video model: its tokens, the attention pairs and FLOPs, joint vs factorised timed here."""

    model_config = ConfigDict(from_attributes=True)

    frames: int
    repeats: int = Field(description="Rounds asked for; conditions.rounds says how many ran")
    batch: int = Field(description="Clips per forward: 2, the two rows of classifier-free guidance")
    latent_size: int
    patch: int
    tokens_per_frame: int = Field(description="(latent_size / patch)², EQ MM3.6 with p_t = 1")
    tokens: int = Field(description="N = frames × tokens_per_frame")
    joint_pairs: int = Field(description="N²: every token attends to every token of the clip")
    factorised_pairs: int = Field(description="T_f (HW)² + HW T_f²: within each frame, then across frames")
    pair_ratio: float = Field(description="joint_pairs / factorised_pairs")
    factorised_flops: int = Field(description="FLOPs of one forward of the served (factorised) video DiT, attention "
                                              "included: its temporal blocks add projections and MLPs the pair "
                                              "count leaves out")
    joint_flops: int = Field(description="FLOPs of one forward of the joint-attention DiT")
    flop_ratio: float = Field(description="joint_flops / factorised_flops")
    factorised_parameters: int
    joint_parameters: int
    factorised: TimingSpread = Field(description="The served (factorised) video DiT's forwards")
    joint: TimingSpread = Field(description="A joint-attention DiT with the same image weights, timed for its cost")
    ordering: TimingComparison = Field(description="The network with more FLOPs against the other: whether the "
                                                   "measurement resolves the order the arithmetic expects")
    conditions: TimingConditions
    factorised_ms: float = Field(description="factorised.median_ms")
    joint_ms: float = Field(description="joint.median_ms")
    time_ratio: float = Field(description="joint_ms / factorised_ms")
    factorised_runs_ms: list[float] = Field(description="factorised.runs_ms")
    joint_runs_ms: list[float] = Field(description="joint.runs_ms")
    factorised_recorded: RecordedTiming | None = Field(description="The committed benchmark's figure for the same "
                                                                   "forward; null when none matches")
    factorised_recorded_note: str = Field(description="What the recorded figure timed, or why there is none")
    joint_recorded: RecordedTiming | None
    joint_recorded_note: str
    model_id: str
    device: str
    torch_threads: int
    measured_s: float = Field(description="Seconds the measurement took, counting the FLOPs included")
    measured_at: str = Field(description="UTC, ISO 8601: when these figures were measured")
    cached: bool = Field(description="True: measured earlier by this server process and reused; "
                                     "remeasure=true measures again")
