"""The soak benchmark's memory report: RSS growth per quarter of the run tells a leak from a warm-up."""

from bench.soak import quarter_growth


def series(rss: list[float]) -> list[list]:
    return [[10 * i, 100 * i, mib] for i, mib in enumerate(rss)]


def test_a_steady_leak_grows_the_same_in_every_quarter():
    assert quarter_growth(series([300 + 2 * i for i in range(9)])) == [4.0, 4.0, 4.0, 4.0]


def test_a_warm_up_shows_growth_first_and_none_later():
    assert quarter_growth(series([300, 330, 340, 342, 342, 343, 343, 343, 343])) == [40.0, 2.0, 1.0, 0.0]


def test_too_short_a_run_has_no_quarters():
    assert quarter_growth(series([300, 310, 320, 330])) is None
