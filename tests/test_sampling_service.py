"""The sampling service: steps reach the callback, the queue is bounded, jobs stop at their deadline or on cancel."""

import asyncio
import threading

import pytest
import torch

from app.diffusion.samplers import SamplingCancelled
from app.pipeline import GenerationSettings, Pipeline
from app.sampling_service import MAX_SEED, JobTimeout, QueueFull, SamplingService, random_seed

SETTINGS = GenerationSettings(prompt="a red circle", seed=3, steps=4)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pipeline(tiny_model_dir) -> Pipeline:
    return Pipeline.load(tiny_model_dir, "cpu")


class Gate:
    """Wraps pipeline.generate_batch so that each call waits until released (no sleeps as synchronisation)."""

    def __init__(self, pipeline: Pipeline, monkeypatch):
        self.entered, self.release, self.calls = threading.Event(), threading.Event(), 0
        self.batches: list[list[GenerationSettings]] = []  # the jobs of every pipeline call, in call order
        original = pipeline.generate_batch

        def gated(jobs, callback=None):
            self.calls += 1
            self.batches.append(list(jobs))
            self.entered.set()
            assert self.release.wait(10), "the test never released the gate"
            return original(jobs, callback)

        monkeypatch.setattr(pipeline, "generate_batch", gated)


def test_every_step_reaches_the_callback_in_order(pipeline):
    seen = []
    service = SamplingService(pipeline, workers=1, queue_size=2, timeout_s=30)
    try:
        result, job = asyncio.run(service.run(SETTINGS, on_step=lambda s: seen.append((s.info.index, s.info.total))))
    finally:
        service.close()
    assert seen == [(i, 4) for i in range(4)]
    assert result.images.shape == (1, 32, 32, 3) and result.seeds == [3]
    assert job.steps_done == 4 and job.queue_s >= 0
    assert service.running == 0 and service.waiting == 0


def test_a_full_queue_is_refused_with_a_retry_hint(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    service = SamplingService(pipeline, workers=1, queue_size=1, timeout_s=30)
    try:
        running = service.submit(SETTINGS)
        assert gate.entered.wait(10)
        waiting = service.submit(SETTINGS)
        assert (service.running, service.waiting, service.capacity) == (1, 1, 2)
        with pytest.raises(QueueFull) as refused:
            service.submit(SETTINGS)
        assert refused.value.capacity == 2 and refused.value.retry_after_s >= 1
        gate.release.set()
        assert running.future.result(10).images.shape == (1, 32, 32, 3)
        assert waiting.future.result(10).seeds == [3]
        service.submit(SETTINGS).future.result(10)  # room again
    finally:
        gate.release.set()
        service.close()
    assert gate.calls == 3


def test_cancel_stops_a_running_job_at_the_next_step(pipeline):
    steps = []
    service = SamplingService(pipeline, workers=1, queue_size=1, timeout_s=30)

    def on_step(step):
        steps.append(step.info.index)
        if step.info.index == 1:
            job.cancel()

    try:
        job = service.submit(GenerationSettings(prompt="a red circle", steps=10), on_step)
        with pytest.raises(SamplingCancelled):
            job.future.result(10)
    finally:
        service.close()
    assert steps == [0, 1]  # step 2's check raises before the callback


def test_a_cancelled_queued_job_never_runs(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    service = SamplingService(pipeline, workers=1, queue_size=1, timeout_s=30)
    try:
        first = service.submit(SETTINGS)
        assert gate.entered.wait(10)
        second = service.submit(SETTINGS)
        second.cancel()
        gate.release.set()
        first.future.result(10)
        with pytest.raises(SamplingCancelled):
            second.future.result(10)
    finally:
        gate.release.set()
        service.close()
    assert gate.calls == 1


def test_a_job_past_its_deadline_times_out_and_frees_the_worker(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    service = SamplingService(pipeline, workers=1, queue_size=1, timeout_s=0.2)

    async def scenario():
        job = service.submit(GenerationSettings(prompt="a red circle", steps=8))
        with pytest.raises(JobTimeout) as late:
            await job.result()  # returns at the deadline; the worker is still held by the gate
        gate.release.set()  # now past the deadline: the callback after the first step cancels the sampling
        with pytest.raises(SamplingCancelled):
            await asyncio.wrap_future(job.future)
        return late.value, job

    try:
        err, job = asyncio.run(scenario())
    finally:
        gate.release.set()
        service.close()
    assert err.limit_s == 0.2 and err.steps_total == 8 and err.started
    assert "time limit of 0.2 s" in str(err) and job.steps_done == 1
    assert service.running == 0 and service.waiting == 0


def test_random_seeds_leave_room_for_the_batch():
    seeds = [random_seed(64) for _ in range(200)]
    assert all(0 <= s <= MAX_SEED - 63 for s in seeds)
    assert len(set(seeds)) > 190
