"""Live timings: how each figure was measured (median and spread of interleaved rounds), under what load, whether
its order against another is resolved, the flag that asks for a fresh measurement, and the recorded benchmark
figure shown beside it."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.lab.timing import MIN_ROUNDS, NOISY_SPREAD
from app.web.schemas.common import Strict

Remeasure = Annotated[bool, Field(
    description="true: measure again now (as a job of the queue) and replace the cached result; false (default): "
                "the cached result when there is one")]


class RemeasureQuery(Strict):
    IN_QUERY = True

    remeasure: Remeasure = False


class TimingSpread(BaseModel):
    """One candidate's interleaved rounds and their statistics."""

    model_config = ConfigDict(from_attributes=True)

    runs_ms: list[float] = Field(description="Each round's time, in round order (times the depth for an estimate)")
    median_ms: float = Field(description="Median of the rounds, milliseconds")
    low_ms: float = Field(description="First quartile of the rounds")
    high_ms: float = Field(description="Third quartile of the rounds")
    min_ms: float
    max_ms: float
    relative_spread: float = Field(description=f"(high_ms - low_ms) / median_ms; above {NOISY_SPREAD} the "
                                               "measurement is flagged noisy")
    estimated: bool = Field(description="True: a part was timed and multiplied; `basis` says which")
    basis: str | None = Field(description="What an estimate is based on, in words; null when the whole is timed")


class TimingConditions(BaseModel):
    """What a live measurement ran under."""

    model_config = ConfigDict(from_attributes=True)

    rounds: int = Field(description=f"Interleaved rounds run (at least {MIN_ROUNDS}; fewer than asked when the "
                                    "time budget ran out): each round times every candidate once, the order rotated "
                                    "from round to round, after one warm-up each")
    cpu: str = Field(description="This server's CPU model (/proc/cpuinfo), to set beside a recorded benchmark's")
    load_start: float = Field(description="1-minute load average of the machine when the measurement began")
    load_end: float = Field(description="... and when it ended")
    cores: int = Field(description="CPU cores this server may run on")
    jobs_beside: int = Field(description="The most other jobs seen running on this server during the rounds")
    noisy: bool = Field(description="True: a spread exceeded noisy_spread, or other jobs ran beside it")
    noisy_reasons: list[str] = Field(description="Why it is flagged noisy, in words; empty when it is not")
    noisy_spread: float = Field(description="The relative_spread above which a measurement is flagged noisy")
    seconds: float = Field(description="Wall seconds of the warm-up and the rounds")


class TimingComparison(BaseModel):
    """Two candidates in the order the arithmetic expects, and whether the measurement resolves that order."""

    model_config = ConfigDict(from_attributes=True)

    slower: str = Field(description="The candidate the arithmetic expects to be slower")
    faster: str
    ratio: float = Field(description="median of `slower` / median of `faster`")
    resolved: bool = Field(description="The two quartile ranges do not overlap, so the measured order is clear; "
                                       "false: the spread is too wide to say which is faster, and the ratio is "
                                       "not a figure to quote")
    inverted: bool = Field(description="Resolved the other way: `slower` measured faster beyond the spread")


class RecordedTiming(BaseModel):
    """The committed benchmark's figure for the same computation, as recorded (never measured live)."""

    file: str = Field(description="The record under bench/results/")
    command: str | None = Field(description="The command that recorded it, when the file says")
    recorded_at: str | None = Field(description="UTC, ISO 8601; null when the file does not say")
    machine: str = Field(description="CPU, cores, torch and its threads, as far as the file records them")
    threads: int | None = Field(description="torch threads of the recorded run")
    load_average: float | None = Field(description="1-minute load average during the recorded run")
    median_ms: float
    best_ms: float | None
    basis: str = Field(description="What exactly the benchmark timed, where it differs from the live figure")
