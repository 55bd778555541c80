"""A sampling queue held full, to see the 429 every API answers under load."""

from contextlib import contextmanager

from app.pipelines.image import GenerationSettings
from app.web.state import state_of


@contextmanager
def full_queue(app):
    """Every slot of the app's sampling queue taken by a long job of another client, all cancelled afterwards."""
    service = state_of(app).sampler
    held = [service.submit(GenerationSettings(prompt="", steps=1000), client="id:someone-else")
            for _ in range(service.capacity)]
    try:
        yield service
    finally:
        for job in held:
            job.cancel()
