"""Prometheus metrics: requests and latency per route template, the sampler's queue, sampling time, images."""

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector

from app import __version__

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
SAMPLING_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
UNMATCHED_ROUTE = "<unmatched>"  # 404s share one label, so random paths cannot grow the series without bound

disable_created_metrics()  # no *_created series: they double the output and no dashboard here reads them


class Metrics:
    """The app's collectors in a registry of its own (each app its own, so tests can build many)."""

    def __init__(self):
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)
        Info("diffusion_lab_build", "The running version", registry=r).info({"version": __version__})
        self.requests = Counter("diffusion_lab_http_requests", "HTTP requests by method, route template and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("diffusion_lab_http_request_duration_seconds",
                                 "Time to the last byte of the response, by method and route template",
                                 ["method", "route"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.in_flight = Gauge("diffusion_lab_http_requests_in_flight", "Requests being answered now", registry=r)
        self.queue_depth = Gauge("diffusion_lab_sampler_queue_depth", "Generate jobs waiting for a sampler thread",
                                 registry=r)
        self.running = Gauge("diffusion_lab_sampler_running_jobs", "Generate jobs a sampler thread runs now",
                             registry=r)
        self.capacity = Gauge("diffusion_lab_sampler_capacity", "Jobs admitted at once before 429", registry=r)
        self.ready = Gauge("diffusion_lab_ready", "1 while the model is loaded and the server takes work", registry=r)
        self.sampling = Histogram("diffusion_lab_sampling_seconds",
                                  "Seconds a sampler thread spent on one generate job, by outcome",
                                  ["outcome"], buckets=SAMPLING_BUCKETS_S, registry=r)
        self.images = Counter("diffusion_lab_images_generated", "Images generated (a clip's frames included)", registry=r)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_job(self, job, results, seconds: float) -> None:
        """A sampling-service listener: one finished job, its outcome done, cancelled or failed."""
        self.sampling.labels(job.outcome).observe(seconds)
        if results is not None:
            self.images.inc(job.rows)  # a clip's frames count as images too

    def render(self, state) -> bytes:
        """The text exposition, with the gauges read from the app's state now."""
        sampler = state.sampler
        self.queue_depth.set(sampler.waiting if sampler else 0)
        self.running.set(sampler.running if sampler else 0)
        self.capacity.set(sampler.capacity if sampler else 0)
        self.ready.set(1 if state.ready else 0)
        return generate_latest(self.registry)
