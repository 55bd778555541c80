"""The generation protocol: what the sampling service needs of a family, and what every step reports.

A family's generator takes the parts of one job (validated settings, one per result) and samples them, calling
back after every denoising step; the service queues, batches, times and cancels jobs by that alone, so a new
family is a new module in app/pipelines/ and its weights. Each step's callback value is the family's own (the
image pipeline's Step, the clip generator's ClipStep); StepPosition is the family-free reading of one that the
streams and pages show: step index of total, t, and EQ MM3.1's weights.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from app.diffusion.samplers import StepInfo
from app.diffusion.schedule import NoiseSchedule
from app.world.prompts import parse_prompt
from app.world.scenes import VOCAB, tokenize


@dataclass(frozen=True)
class StepPosition:
    """One step: its 0-based index of total, its input's timestep t, ᾱ_t and the two weights of EQ MM3.1."""

    index: int
    total: int
    t: int
    abar_t: float
    sqrt_abar_t: float  # weight of the clean sample in x_t
    sqrt_one_minus_abar_t: float  # weight of the noise in x_t

    @classmethod
    def of(cls, schedule: NoiseSchedule, info: StepInfo) -> StepPosition:
        """Where the sampler's step `info` is, read on the schedule it samples."""
        t = int(info.t)
        signal, noise = schedule.coefficients(t)
        return cls(info.index, info.total, t, float(schedule.alphas_cumprod[t]), float(signal), float(noise))

    def as_dict(self) -> dict:
        return asdict(self)


class GenerationParts(Protocol):
    """What the service reads of one part's settings."""

    @property
    def rows(self) -> int:
        """Images the part is made of: its weight in a shared batch."""

    def batch_key(self) -> Hashable | None:
        """Parts with equal keys may be sampled as one batch; None: this part runs alone."""


class PromptNotLearned(ValueError):
    """A prompt in the grammar whose words these weights were never trained on (a caption encoder from before the
    two-shape words): a refusal the client can act on, not a failure of the server."""

    def __init__(self, field: str, words: list[str], text: str):
        self.field, self.words, self.text = field, words, text
        many = len(words) > 1
        super().__init__(f"the loaded model was trained before the word{'s' if many else ''} {', '.join(words)}: "
                         f"its caption encoder cannot read {'them' if many else 'it'} (retrain or load newer weights)")


def words_beyond(caption: str, vocab_size: int) -> list[str]:
    """The words of a canonical caption whose token ids a caption encoder of vocab_size rows has never seen."""
    ids = tokenize([caption])[0]
    return [VOCAB[i] for i in dict.fromkeys(ids.tolist()) if i >= vocab_size]


def refuse_unlearned(parts: Sequence[Any], unlearned_words: Callable[[str], list[str]]) -> None:
    """Raise PromptNotLearned for the first prompt or negative prompt of the parts with a word that a caption
    encoder cannot read (unlearned_words(canonical caption) names them)."""
    for part in parts:
        for name in ("prompt", "negative_prompt"):
            text = getattr(part, name)
            if words := unlearned_words(parse_prompt(text).canonical):
                raise PromptNotLearned(name, words, text)


class Generator(Protocol):
    """A family's sampler as the service runs it: a job's parts in, one result per part out. A generator may also
    have check(parts), which raises PromptNotLearned before a job is queued."""

    def total_steps(self, parts: Sequence[Any]) -> int:
        """How many step callbacks sampling these parts makes (the service counts and times a job by them)."""

    def generate_batch(self, parts: Sequence[Any], callback: Callable[[Any], None] | None = None) -> list[Any]:
        """Sample the parts; callback(step) after every denoising step, which may raise to cancel."""
