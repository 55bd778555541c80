"""The streams' shared behaviour, checked the same way for every family: leaving a stream cancels its job."""

import time

import httpx

from app.diffusion.samplers import SamplingCancelled
from app.web.state import state_of


def assert_closing_the_stream_cancels_the_job(app, server: str, path: str, params: dict, monkeypatch, *,
                                              method: str = "GET", step_line: str = "event: step") -> None:
    """Read three steps of a 1,000-step run (lines starting with step_line), close the stream: the job stops within a
    step and frees the worker. A GET sends params as its query, a POST as its JSON body."""
    service = state_of(app).sampler
    jobs = []
    submit_many = service.submit_many  # submit() goes through it too
    monkeypatch.setattr(service, "submit_many", lambda *a, **k: jobs.append(submit_many(*a, **k)) or jobs[-1])
    seen = 0
    request = {**params, "steps": 1000}
    sent = {"params": request} if method == "GET" else {"json": request}
    with httpx.Client(timeout=30) as http:
        with http.stream(method, server + path, **sent) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                seen += line.startswith(step_line)
                if seen == 3:
                    break
    [job] = jobs
    deadline = time.monotonic() + 5
    while not job.future.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.future.done(), f"the job still runs at step {job.steps_done}"
    stopped_at = job.steps_done
    time.sleep(0.3)
    assert job.steps_done == stopped_at < 1000
    assert isinstance(job.future.exception(), SamplingCancelled)
    assert service.running == 0
