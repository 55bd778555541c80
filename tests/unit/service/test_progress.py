"""app/service/progress.py: each client sees only its own jobs, how far they are, a preview when it asks, and can
stop them."""

import re
import time

import pytest

from app.diffusion.samplers import SamplingCancelled
from app.pipelines.image import GenerationSettings
from app.service.jobs import Job, QueueFull
from app.service.progress import IDLE, INTERRUPTED, ProgressBoard


class Steps:
    """The generator a Job needs to count its steps."""

    def total_steps(self, parts):
        return parts[0].steps


def submitter(jobs: list, steps: int = 10):
    def submit(on_step):
        jobs.append(Job(Steps(), [GenerationSettings(prompt="", steps=steps)], 60, on_step, "client"))
        return jobs[-1]

    return submit


def run_steps(job: Job, count: int, seconds: float) -> None:
    """What the worker does: start the job `seconds` ago, then report `count` steps."""
    job.started = time.monotonic() - seconds
    for index in range(count):
        job.step(f"step {index}")


def test_a_client_without_jobs_is_idle():
    assert ProgressBoard().progress("alice") == IDLE


def test_progress_counts_the_steps_and_the_time_left():
    board, jobs, rendered = ProgressBoard(), [], []
    with board.track("alice", submitter(jobs), lambda step: rendered.append(step) or b"png") as tracked:
        waiting = board.progress("alice")
        assert (waiting.jobs, waiting.running, waiting.fraction, waiting.steps_total) == (1, False, 0.0, 10)
        run_steps(tracked.job, 4, seconds=2.0)
        now = board.progress("alice")
        assert (now.steps_done, now.steps_total, now.fraction, now.running) == (4, 10, 0.4, True)
        assert now.eta_s == pytest.approx(3.0, abs=0.1)  # 0.5 s a step, 6 steps left
    assert board.progress("alice") == IDLE and rendered == []


def test_a_preview_is_rendered_only_at_the_step_after_it_was_asked_for():
    board, jobs, rendered = ProgressBoard(), [], []
    with board.track("alice", submitter(jobs), lambda step: rendered.append(step) or step.encode()) as tracked:
        run_steps(tracked.job, 2, seconds=1.0)
        assert rendered == [] and board.progress("alice", want_preview=True).preview is None
        tracked.job.step("step 2")
        tracked.job.step("step 3")
        assert rendered == ["step 2"] and board.progress("alice").preview == b"step 2"


def test_a_client_sees_and_stops_only_its_own_jobs():
    board, jobs = ProgressBoard(), []
    with board.track("alice", submitter(jobs), lambda step: b"") as tracked:
        run_steps(tracked.job, 3, seconds=1.0)
        assert board.progress("bob") == IDLE and board.interrupt("bob") == 0
        assert not tracked.job.cancelled
        assert board.interrupt("alice") == 1
        assert tracked.interrupted and board.progress("alice").interrupted
        with pytest.raises(SamplingCancelled, match=re.escape(INTERRUPTED)):
            tracked.job.check()


def test_with_two_jobs_the_running_one_is_reported():
    board, jobs = ProgressBoard(), []
    with board.track("alice", submitter(jobs, 10), lambda step: b""), \
            board.track("alice", submitter(jobs, 40), lambda step: b""):
        run_steps(jobs[1], 5, seconds=1.0)
        now = board.progress("alice")
        assert (now.jobs, now.steps_done, now.steps_total) == (2, 5, 40)
        assert board.interrupt("alice") == 2 and all(job.cancelled for job in jobs)


def test_a_refused_submit_leaves_nothing_on_the_board():
    board = ProgressBoard()

    def full(on_step):
        raise QueueFull(2, 5)

    with pytest.raises(QueueFull):
        with board.track("alice", full, lambda step: b""):
            pass
    assert board.progress("alice") == IDLE and board._tracked == {}
