"""What every generator reports at each denoising step, whatever its family: where the step is on the schedule.

The image and the video pipelines both hand their step callbacks the sampler's StepInfo; StepPosition is the
family-free reading of it that the streams and pages show: step index of total, t, and EQ MM3.1's weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from app.diffusion.schedule import NoiseSchedule


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
    def on(cls, schedule: NoiseSchedule, index: int, total: int, t: int) -> StepPosition:
        signal, noise = schedule.coefficients(int(t))
        return cls(index, total, int(t), float(schedule.alphas_cumprod[int(t)]), float(signal), float(noise))

    def as_dict(self) -> dict:
        return asdict(self)
