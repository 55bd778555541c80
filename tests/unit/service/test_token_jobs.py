"""A token family's requests in the sampling service (shared batches, each job its own rows of every step) and its
steps made viewable (app/service/previews.py)."""

import threading

import numpy as np
import pytest
import torch

from app.pipelines.token_sampling import UNKNOWN
from app.pipelines.tokens import TokenFamily, TokenSettings
from app.service.imaging import decode_png
from app.service.previews import view_token_step
from app.service.sampling import SamplingService
from tests.unit.service.test_sampling_service import arun

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def masked(tiny_model_dir) -> TokenFamily:
    return TokenFamily.load(tiny_model_dir, "masked", "cpu")


@pytest.fixture(scope="module")
def autoregressive(tiny_model_dir) -> TokenFamily:
    return TokenFamily.load(tiny_model_dir, "autoregressive", "cpu")


def test_compatible_token_jobs_share_a_batch_and_each_sees_only_its_own_rows(masked, monkeypatch):
    """Two masked jobs with the same rounds, temperature and top_k are one generate_batch call; each job's steps hold
    its own images only, and its images are those it draws alone (an image depends on its seed alone)."""
    entered, release, calls = threading.Event(), threading.Event(), []
    original = masked.generate_batch

    def gated(parts, callback=None):
        calls.append(len(parts))
        entered.set()
        assert release.wait(10)
        return original(parts, callback)

    monkeypatch.setattr(masked, "generate_batch", gated)
    service = SamplingService(masked, workers=1, queue_size=4, timeout_s=30)
    first = TokenSettings(family="masked", prompt="a red circle", seed=1, rounds=3, batch_size=2)
    second = TokenSettings(family="masked", prompt="a blue square", seed=9, rounds=3, guidance_scale=1.0)
    seen: dict[str, list] = {"blocker": [], "first": [], "second": []}

    async def run_all():
        import asyncio

        blocker = service.submit(TokenSettings(family="masked", rounds=1), seen["blocker"].append, "c")
        assert await asyncio.to_thread(entered.wait, 10)
        jobs = [service.submit(first, seen["first"].append, "a"), service.submit(second, seen["second"].append, "b")]
        release.set()
        await blocker.result()
        return [await job.result() for job in jobs], jobs

    try:
        (first_results, second_results), jobs = arun(run_all())
    finally:
        service.close()
    assert calls == [1, 2] and [job.batch_jobs for job in jobs] == [2, 2]
    assert [s.tokens.shape[0] for s in seen["first"]] == [2, 2, 2] and [s.index for s in seen["first"]] == [0, 1, 2]
    assert [s.tokens.shape[0] for s in seen["second"]] == [1, 1, 1]
    assert torch.equal(seen["first"][-1].tokens, first_results[0].tokens)
    assert torch.equal(seen["second"][-1].tokens, second_results[0].tokens)
    alone = original([second])[0]
    assert torch.equal(alone.tokens, second_results[0].tokens)


def test_a_step_of_the_autoregressive_family_as_a_viewer_sees_it(autoregressive):
    steps = []
    result = autoregressive.generate(TokenSettings(prompt="a green triangle", seed=4, batch_size=2), steps.append)
    side, n = autoregressive.config.grid, autoregressive.tokens
    assert [s.index for s in steps] == list(range(side)) and {s.total for s in steps} == {side}
    views = [view_token_step(autoregressive, s) for s in steps]
    for i, view in enumerate(views):
        assert view.tokens_drawn == view.forwards == (i + 1) * side
        assert view.new_positions == list(range(i * side, (i + 1) * side))
        assert view.grid[(i + 1) * side:] == [UNKNOWN] * (n - (i + 1) * side)
    assert views[-1].grid == result.tokens[0].tolist()  # image 0 of the batch
    assert np.array_equal(decode_png(views[-1].png), result.images[0])  # a whole grid: the image itself
    assert {decode_png(view.png).shape for view in views} == {result.images[0].shape}
    numbers_only = view_token_step(autoregressive, steps[0], previews=False)
    assert numbers_only.png is None and numbers_only.grid == views[0].grid
