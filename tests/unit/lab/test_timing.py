"""Interleaved timing with a fake clock: the order of the rounds, median and quartiles, estimates, the budget,
the noisy flag, and which orderings a measurement resolves."""

import pytest

from app.lab import timing
from app.lab.once import MeasuredOnce
from app.lab.timing import Candidate, Spread, compare, interleave


class FakeClock:
    """Time moves only when a candidate runs: by its cost, times a load factor that a test can script."""

    def __init__(self):
        self.now = 0.0
        self.calls: list[str] = []
        self.factor = lambda now: 1.0

    def __call__(self) -> float:
        return self.now

    def candidate(self, name: str, cost_s: float, **kwargs) -> Candidate:
        def run():
            self.calls.append(name)
            self.now += cost_s * self.factor(self.now)
        return Candidate(name, run, **kwargs)


def test_every_round_times_each_candidate_once_in_a_rotated_order():
    clock = FakeClock()
    cands = [clock.candidate(n, 0.01) for n in "abc"]
    run = interleave(cands, rounds=4, budget_s=100, clock=clock, load=lambda: 0.5)
    assert clock.calls == list("abc" "abc" "bca" "cab" "abc")  # warm-up, then rounds 0..3
    assert run.conditions.rounds == 4
    assert all(len(s.runs_ms) == 4 for s in run.spreads.values())


def test_median_quartiles_and_relative_spread():
    s = Spread.of([4.0, 1.0, 100.0, 3.0, 2.0])
    assert (s.median_ms, s.low_ms, s.high_ms, s.min_ms, s.max_ms) == (3.0, 2.0, 4.0, 1.0, 100.0)
    assert s.relative_spread == pytest.approx(2 / 3)
    assert s.runs_ms == [4.0, 1.0, 100.0, 3.0, 2.0] and not s.estimated and s.basis is None
    single = Spread.of([5.0])
    assert (single.low_ms, single.high_ms, single.relative_spread) == (5.0, 5.0, 0.0)


def test_an_estimate_is_the_part_times_its_count_and_says_so():
    clock = FakeClock()
    run = interleave([clock.candidate("whole", 0.030),
                      clock.candidate("part", 0.002, times=6, basis="one block x 6")], 3, 100, clock=clock)
    part = run.spreads["part"]
    assert part.median_ms == pytest.approx(12.0) and part.estimated and part.basis == "one block x 6"
    assert run.spreads["whole"].median_ms == pytest.approx(30.0) and not run.spreads["whole"].estimated


def test_the_budget_stops_the_rounds_but_never_below_the_minimum():
    clock = FakeClock()
    cands = [clock.candidate("a", 0.1), clock.candidate("b", 0.1)]  # 0.2 s a round, 0.2 s of warm-up
    assert interleave(cands, rounds=9, budget_s=1.0, clock=clock).conditions.rounds == 4  # 0.2 + 4 x 0.2
    slow = FakeClock()
    assert interleave([slow.candidate("a", 10.0)], 9, 1.0, clock=slow).conditions.rounds == timing.MIN_ROUNDS
    assert interleave(cands, rounds=1, budget_s=100, clock=clock).conditions.rounds == timing.MIN_ROUNDS


def test_a_burst_of_load_hits_every_candidate_of_its_round_and_the_medians_keep_the_order():
    clock = FakeClock()
    clock.factor = lambda now: 20.0 if 0.5 <= now < 0.6 else 1.0  # another process takes the cores for a moment
    run = interleave([clock.candidate("small", 0.01), clock.candidate("big", 0.1)], 5, 100, clock=clock)
    small, big = run.spreads["small"], run.spreads["big"]
    assert max(small.runs_ms) > 100 or max(big.runs_ms) > 1000  # the burst was caught by some run
    assert small.median_ms == pytest.approx(10.0) and big.median_ms == pytest.approx(100.0)
    verdict = compare("big", big, "small", small)
    assert verdict.resolved and not verdict.inverted and verdict.ratio == pytest.approx(10.0)


def test_a_wide_spread_or_a_job_beside_flags_the_measurement_noisy_with_the_load():
    clock = FakeClock()
    costs = iter([0.01, 0.01, 0.05, 0.01, 0.05])  # warm-up, then rounds: 10, 50, 10, 50 ms
    jumpy = Candidate("jumpy", lambda: setattr(clock, "now", clock.now + next(costs)))
    loads = iter([0.25, 0.75])
    run = interleave([jumpy], 4, 100, clock=clock, load=lambda: next(loads))
    c = run.conditions
    assert (c.load_start, c.load_end, c.noisy_spread) == (0.25, 0.75, timing.NOISY_SPREAD)
    assert c.noisy and c.noisy_reasons == ["jumpy: the middle half of its runs spans 133% of its median"]
    steady = FakeClock()
    quiet = interleave([steady.candidate("steady", 0.01)], 3, 100, clock=steady, load=lambda: 0.5, beside=lambda: 0)
    assert not quiet.conditions.noisy and quiet.conditions.noisy_reasons == []
    busy = interleave([steady.candidate("steady", 0.01)], 3, 100, clock=steady, load=lambda: 0.5,
                      beside=iter([0, 0, 2, 1]).__next__)
    assert busy.conditions.jobs_beside == 2 and busy.conditions.noisy
    assert busy.conditions.noisy_reasons == ["2 other job(s) ran on the server at the same time"]
    loaded = interleave([steady.candidate("steady", 0.01)], 3, 100, clock=steady, load=iter([0.5, 9.0]).__next__)
    assert loaded.conditions.noisy and loaded.conditions.noisy_reasons == [
        f"the load average (9.0) was above the {timing.cores()} cores: other work competed for the CPU, so the "
        "absolute times run long (the ratios, timed in the same rounds, hold better)"]


@pytest.mark.parametrize("slower, faster, resolved, inverted", [
    ([10, 11, 12], [1, 2, 3], True, False),
    ([10, 11, 12], [9, 10.5, 30], False, False),  # quartile ranges overlap: not resolved
    ([1, 2, 3], [10, 11, 12], True, True),  # the expected-slower one measured faster beyond the spread
])
def test_a_comparison_is_resolved_only_when_the_quartile_ranges_are_apart(slower, faster, resolved, inverted):
    verdict = compare("s", Spread.of(slower), "f", Spread.of(faster))
    assert (verdict.resolved, verdict.inverted) == (resolved, inverted)
    assert verdict.ratio == pytest.approx(Spread.of(slower).median_ms / Spread.of(faster).median_ms)


def test_measured_once_measures_again_when_asked():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Result:
        n: int
        cached: bool = False

    counter = iter(range(10))
    cache = MeasuredOnce()
    assert cache.get("k", lambda: Result(next(counter))) == Result(0)
    assert cache.get("k", lambda: Result(next(counter))) == Result(0, cached=True)
    assert cache.get("k", lambda: Result(next(counter)), refresh=True) == Result(1)
    assert cache.get("k", lambda: Result(next(counter))) == Result(1, cached=True)
