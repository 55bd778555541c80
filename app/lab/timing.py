"""Time candidates against each other so that load from other processes cannot invert the story.

Each candidate is run once to warm up; then every round times each candidate once, in an order rotated from round
to round, so a burst of load lands on all of them alike instead of on whichever was being timed at the moment.
Per candidate the median of its rounds is reported with the quartiles (its spread) and min..max. Two candidates
are ordered only when their quartile ranges do not overlap; otherwise the measurement cannot say which is faster.
The whole measurement is flagged noisy when a candidate's quartile range is wider than NOISY_SPREAD of its median,
other jobs ran beside it, or the 1-minute load average (recorded at start and end either way) exceeded the cores.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

NOISY_SPREAD = 0.25  # (third quartile - first quartile) / median above this flags the measurement as noisy
MIN_ROUNDS = 3  # fewer runs have no spread to speak of: at least this many rounds whatever the budget


@dataclass(frozen=True)
class Candidate:
    """One thing to time. An estimate times a part and multiplies: `times` identical parts make the whole."""

    name: str
    run: Callable[[], object]
    times: int = 1
    basis: str | None = None  # what an estimate is based on, in words; None: the whole thing is timed


@dataclass(frozen=True)
class Spread:
    """One candidate's timed rounds (ms, in round order, multiplied for an estimate) and their statistics."""

    runs_ms: list[float]
    median_ms: float
    low_ms: float  # first quartile
    high_ms: float  # third quartile
    min_ms: float
    max_ms: float
    relative_spread: float  # (high - low) / median
    estimated: bool
    basis: str | None

    @classmethod
    def of(cls, runs_ms: Sequence[float], basis: str | None = None) -> Spread:
        runs = list(runs_ms)
        median = statistics.median(runs)
        low, high = (statistics.quantiles(runs, n=4, method="inclusive")[::2] if len(runs) > 1
                     else (runs[0], runs[0]))
        return cls(runs_ms=runs, median_ms=median, low_ms=low, high_ms=high, min_ms=min(runs), max_ms=max(runs),
                   relative_spread=(high - low) / median if median > 0 else 0.0, estimated=basis is not None,
                   basis=basis)


@dataclass(frozen=True)
class Comparison:
    """`slower` against `faster` as the arithmetic expects them: the ratio of medians, and whether it is resolved."""

    slower: str
    faster: str
    ratio: float  # median of `slower` / median of `faster`
    resolved: bool  # the quartile ranges do not overlap: the measured order is certain at the stated spread
    inverted: bool  # resolved the other way: `slower` was measured faster beyond the spread


def compare(slower_name: str, slower: Spread, faster_name: str, faster: Spread) -> Comparison:
    apart = slower.low_ms > faster.high_ms
    inverted = slower.high_ms < faster.low_ms
    return Comparison(slower=slower_name, faster=faster_name, ratio=slower.median_ms / faster.median_ms,
                      resolved=apart or inverted, inverted=inverted)


@dataclass(frozen=True)
class Conditions:
    """What a measurement ran under, and whether it is to be trusted less."""

    rounds: int
    cpu: str
    load_start: float  # 1-minute load average
    load_end: float
    cores: int
    jobs_beside: int  # the most other jobs seen running on the server during the rounds
    noisy: bool
    noisy_reasons: list[str]
    noisy_spread: float  # the threshold on relative_spread that flags a measurement noisy
    seconds: float  # warm-up and rounds


@dataclass(frozen=True)
class Interleaved:
    """Every candidate's Spread, in the order given, and the conditions they were measured under."""

    spreads: dict[str, Spread]
    conditions: Conditions


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return 0.0


def interleave(candidates: Sequence[Candidate], rounds: int, budget_s: float, *,
               clock: Callable[[], float] = time.perf_counter, load: Callable[[], float] = load_average,
               beside: Callable[[], int] = lambda: 0) -> Interleaved:
    """Warm up each candidate, then up to `rounds` rounds (at least MIN_ROUNDS) while the next fits budget_s."""
    started, load_start = clock(), load()
    for candidate in candidates:
        candidate.run()  # first calls pay for allocations
    runs: dict[str, list[float]] = {c.name: [] for c in candidates}
    jobs_beside = beside()
    done, round_s = 0, 0.0
    while done < max(rounds, MIN_ROUNDS) and (done < MIN_ROUNDS or clock() + round_s <= started + budget_s):
        round_started = clock()
        shift = done % len(candidates)
        for candidate in [*candidates[shift:], *candidates[:shift]]:
            t0 = clock()
            candidate.run()
            runs[candidate.name].append((clock() - t0) * 1000 * candidate.times)
        round_s, done = clock() - round_started, done + 1
        jobs_beside = max(jobs_beside, beside())
    spreads = {c.name: Spread.of(runs[c.name], c.basis) for c in candidates}
    load_end = load()
    reasons = [f"{name}: the middle half of its runs spans {s.relative_spread:.0%} of its median"
               for name, s in spreads.items() if s.relative_spread > NOISY_SPREAD]
    if jobs_beside:
        reasons.append(f"{jobs_beside} other job(s) ran on the server at the same time")
    if (busiest := max(load_start, load_end)) > cores():
        reasons.append(f"the load average ({busiest:.1f}) was above the {cores()} cores: other work competed for "
                       "the CPU, so the absolute times run long (the ratios, timed in the same rounds, hold better)")
    return Interleaved(spreads, Conditions(rounds=done, cpu=cpu_model(), load_start=load_start, load_end=load_end,
                                           cores=cores(), jobs_beside=jobs_beside, noisy=bool(reasons),
                                           noisy_reasons=reasons, noisy_spread=NOISY_SPREAD,
                                           seconds=clock() - started))
