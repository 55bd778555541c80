"""The sampling service: steps reach the callback, the queue is bounded and fair, compatible jobs share a batch,
jobs stop at their deadline or on cancel."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

from app.diffusion.samplers import SamplingCancelled
from app.pipelines.image import GenerationSettings, Pipeline
from app.service.jobs import MAX_SEED, JobTimeout, QueueFull, client_key, random_seed
from app.service.sampling import SamplingService, in_passing_thread

SETTINGS = GenerationSettings(prompt="a red circle", seed=3, steps=4)


def arun(coro):
    """asyncio.run in a thread of its own: the session's Playwright browser may keep a loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


pytestmark = pytest.mark.usefixtures("one_thread")


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
        result, job = arun(service.run(SETTINGS, on_step=lambda s: seen.append((s.info.index, s.info.total))))
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
        assert running.future.result(10)[0].images.shape == (1, 32, 32, 3)
        assert waiting.future.result(10)[0].seeds == [3]
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
        err, job = arun(scenario())
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


# ---------------------------------------------------------------------------------------------- fairness and batching


def test_client_keys_prefer_the_header_then_the_address():
    assert client_key({"x-client-id": " alice "}, "10.0.0.1") == "id:alice"
    assert client_key({}, "10.0.0.1") == client_key({"x-client-id": "  "}, "10.0.0.1") == "ip:10.0.0.1"
    assert client_key({"x-client-id": "x" * 500}, None) == "id:" + "x" * 64
    assert client_key({"x-client-id": "bad\nid"}, None) == "ip:unknown"


def _served(gate: Gate) -> list[list[int]]:
    """The seeds of every pipeline call after the first (the blocker), one list per call."""
    return [[job.seed for job in batch] for batch in gate.batches[1:]]


def test_one_clients_many_jobs_wait_behind_another_clients_one(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    service = SamplingService(pipeline, workers=1, queue_size=8, timeout_s=30, batch_rows=1)  # no merging
    job = GenerationSettings(prompt="a red circle", steps=2)
    try:
        first = service.submit(replace(job, seed=100), client="A")
        assert gate.entered.wait(10)
        jobs = [service.submit(replace(job, seed=101 + i), client="A") for i in range(4)]
        jobs.append(service.submit(replace(job, seed=200), client="B"))
        gate.release.set()
        for j in (first, *jobs):
            j.future.result(10)
    finally:
        gate.release.set()
        service.close()
    # A was served last, so B goes next; a plain FIFO would have run 101-104 first
    assert _served(gate) == [[200], [101], [102], [103], [104]]


def test_a_shared_batch_takes_clients_in_turn_up_to_the_row_cap(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    service = SamplingService(pipeline, workers=1, queue_size=8, timeout_s=30, batch_rows=4)
    job = GenerationSettings(prompt="a red circle", steps=2, batch_size=2)
    try:
        blocker = service.submit(replace(job, seed=1), client="A")
        assert gate.entered.wait(10)
        jobs = [service.submit(replace(job, seed=seed), client="A") for seed in (10, 20, 30)]
        jobs.append(service.submit(replace(job, seed=90), client="B"))
        gate.release.set()
        for j in (blocker, *jobs):
            j.future.result(10)
    finally:
        gate.release.set()
        service.close()
    assert _served(gate) == [[90, 10], [20, 30]]  # 4 images per call; B's one job rides in the first
    assert service.stats()["batches"] == 3 and service.stats()["images"] == 10


def test_compatible_jobs_share_one_call_and_draw_what_they_draw_alone(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    service = SamplingService(pipeline, workers=1, queue_size=4, timeout_s=30)
    red = GenerationSettings(prompt="a red circle", seed=3, steps=5, guidance_scale=5.0)
    blue = GenerationSettings(prompt="a large blue square", negative_prompt="a red square", seed=8, steps=5,
                              guidance_scale=1.0, guidance_rescale=0.5, batch_size=2)
    seen = {"red": [], "blue": []}

    def record(name):
        return lambda step: seen[name].append((step.info.x_t.shape[0], step.eps_uncond is None))

    try:
        blocker = service.submit(replace(red, steps=1))
        assert gate.entered.wait(10)
        jobs = [service.submit(red, record("red"), client="A"), service.submit(blue, record("blue"), client="B")]
        gate.release.set()
        blocker.future.result(10)
        together = [j.future.result(10)[0] for j in jobs]
    finally:
        gate.release.set()
        service.close()
    assert [len(batch) for batch in gate.batches] == [1, 2]  # the blocker alone, then both in one call
    assert jobs[0].batch_jobs == jobs[1].batch_jobs == 2
    assert seen == {"red": [(1, False)] * 5, "blue": [(2, True)] * 5}  # own rows only; s = 1 needs no uncond
    for settings, result in zip((red, blue), together):
        alone = pipeline.generate(settings)
        assert result.seeds == alone.seeds and result.settings == settings
        assert np.abs(result.images.astype(int) - alone.images).max() <= 2  # rounding of batched products


def test_incompatible_jobs_are_not_merged(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    service = SamplingService(pipeline, workers=1, queue_size=4, timeout_s=30)
    base = GenerationSettings(prompt="a red circle", seed=1, steps=3)
    others = [replace(base, steps=4), replace(base, sampler="ddim", eta=0.5), replace(base, sampler="ddim")]
    try:
        blocker = service.submit(base)
        assert gate.entered.wait(10)
        jobs = [service.submit(s, client=f"c{i}") for i, s in enumerate(others)]
        gate.release.set()
        for j in (blocker, *jobs):
            j.future.result(10)
    finally:
        gate.release.set()
        service.close()
    assert [len(batch) for batch in gate.batches] == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="share steps"):
        service.submit_many([base, replace(base, steps=4)])


def test_cancelling_one_job_of_a_shared_batch_leaves_the_other_whole(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    service = SamplingService(pipeline, workers=1, queue_size=4, timeout_s=30)
    keep = GenerationSettings(prompt="a green triangle", seed=4, steps=6, guidance_scale=3.0)
    steps = {"keep": [], "drop": []}

    def drop_at_step_one(step):
        steps["drop"].append(step.info.index)
        if step.info.index == 1:
            dropped.cancel()

    try:
        blocker = service.submit(replace(keep, steps=1))
        assert gate.entered.wait(10)
        dropped = service.submit(replace(keep, seed=9, prompt="a red circle"), drop_at_step_one, client="A")
        kept = service.submit(keep, lambda s: steps["keep"].append(s.info.index), client="B")
        gate.release.set()
        blocker.future.result(10)
        with pytest.raises(SamplingCancelled):
            dropped.future.result(10)
        [result] = kept.future.result(10)
    finally:
        gate.release.set()
        service.close()
    assert [len(batch) for batch in gate.batches] == [1, 2]
    assert steps == {"drop": [0, 1], "keep": list(range(6))}
    assert dropped.outcome == "cancelled" and kept.outcome == "done"
    assert np.abs(result.images.astype(int) - pipeline.generate(keep).images).max() <= 2
    assert service.running == 0 and service.waiting == 0


def test_submit_many_answers_one_result_per_part_in_one_slot(pipeline):
    service = SamplingService(pipeline, workers=1, queue_size=1, timeout_s=30)
    parts = [GenerationSettings(prompt="a red circle", seed=s, steps=3, guidance_scale=g)
             for s, g in ((1, 0.0), (2, 3.0), (3, 9.0))]
    try:
        results, job = arun(service.run_many(parts))
    finally:
        service.close()
    assert [r.seeds for r in results] == [[1], [2], [3]] and job.rows == 3
    assert [r.settings.guidance_scale for r in results] == [0.0, 3.0, 9.0]


def test_listeners_hear_each_job_and_drain_refuses_new_ones(pipeline, monkeypatch):
    gate = Gate(pipeline, monkeypatch)
    heard = []
    service = SamplingService(pipeline, workers=1, queue_size=2, timeout_s=30)
    service.listeners.append(lambda job, result, seconds: heard.append((job.outcome, result)))
    try:
        running = service.submit(SETTINGS)
        assert gate.entered.wait(10)
        service.drain(0.0)  # no grace: the running job is cancelled at its next step
        assert service.closing
        with pytest.raises(SamplingCancelled):
            service.submit(SETTINGS)
        gate.release.set()
        with pytest.raises(SamplingCancelled):
            running.future.result(10)
    finally:
        gate.release.set()
        service.close()
    assert running.outcome == "cancelled" and heard == [("cancelled", None)]  # no result to count
    heard.clear()
    ok = SamplingService(pipeline, workers=1, queue_size=1, timeout_s=30)
    ok.listeners.append(lambda job, results, seconds: heard.append((job.outcome, len(results[0].images), seconds > 0)))
    try:
        ok.submit(replace(SETTINGS, batch_size=2)).future.result(10)
    finally:
        ok.close()
    assert heard == [("done", 2, True)]


# ---------------------------------------------------------------------------------------------- one thread for torch


def test_other_torch_work_runs_on_the_sampler_thread_and_loading_on_a_passing_one(pipeline):
    service = SamplingService(pipeline, workers=1, queue_size=1, timeout_s=30)
    try:
        name = arun(service.run_in_worker(lambda: threading.current_thread().name))
        sampled = []
        service.submit(SETTINGS, lambda step: sampled.append(threading.current_thread().name)).future.result(10)
    finally:
        service.close()
    assert name.startswith("sampler") and set(sampled) == {name}
    thread = arun(in_passing_thread(threading.current_thread))
    assert thread.name.startswith("torch-once") and not thread.is_alive()  # its OpenMP pool went with it


def test_retry_after_follows_the_throughput_not_the_batch_count(pipeline):
    """Jobs that share a batch each cost their share of it: 8 jobs ahead, batches of 4 jobs taking 2 s -> ~4 s."""
    service = SamplingService(pipeline, workers=1, queue_size=16, timeout_s=30)
    try:
        batch = [service.submit_many([SETTINGS]) for _ in range(4)]
        for _ in range(30):  # the running estimate settles on 2 s / 4 jobs
            with service._lock:
                service._running += len(batch)
            service._release(batch, time.monotonic() - 2.0, 0)
        assert service._mean_job_s == pytest.approx(0.5, rel=0.01)
        for job in batch:
            job.cancel()
    finally:
        service.close()
    with service._lock:
        service._jobs = {object() for _ in range(8)}  # 8 admitted: a new job is 8th in line behind 1 worker
    assert service.retry_after_s() in (4, 5)  # 8 x 0.5 s, rounded up; the batch-count estimate said 8 x 2 s = 16 s
