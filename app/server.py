"""Serving with uvicorn: logging from the settings, and a graceful drain when SIGTERM (or Ctrl-C) arrives.

On the signal the app stops taking generation jobs (503 with Retry-After; /readyz turns 503), running jobs
get settings.shutdown_grace_s to finish and are then cancelled at their next step; uvicorn meanwhile closes
its sockets, waits for the open responses, runs the lifespan's shutdown (the sampler's close()) and exits.
"""

import asyncio
import logging

import uvicorn

from app.config import Settings
from app.main import create_app
from app.web.logs import log_config
from app.web.state import state_of

SHUTDOWN_MARGIN_S = 2.0  # after the grace, cancelled jobs answer within a step; uvicorn's own limit backs it up
log = logging.getLogger("diffusion_lab")


def begin_drain(app, grace_s: float) -> None:
    """Take no new work; running jobs get grace_s seconds before they are cancelled."""
    state = state_of(app)
    state.draining, state.ready = True, False
    if state.sampler is not None:
        state.sampler.drain(grace_s)
    log.info("shutting down: no new jobs; running ones get %g s to finish", grace_s)


class DrainingServer(uvicorn.Server):
    """uvicorn's server that drains the app as soon as the first exit signal arrives."""

    def __init__(self, config: uvicorn.Config, grace_s: float):
        super().__init__(config)
        self.grace_s = grace_s
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig, frame) -> None:
        # A signal handler may interrupt code that holds the sampler's lock: do the work on the event loop.
        if not self.should_exit and self._loop is not None:
            self._loop.call_soon_threadsafe(begin_drain, self.config.app, self.grace_s)
        super().handle_exit(sig, frame)


def serve(settings: Settings, host: str, port: int) -> int:
    """Run the app until a signal; 0 once it has shut down."""
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, root_path=settings.root_path,
        log_config=log_config(settings.log_level, settings.log_format), log_level=settings.log_level,
        access_log=False,  # the app logs each request itself, with its id, route and duration
        timeout_graceful_shutdown=settings.shutdown_grace_s + SHUTDOWN_MARGIN_S,
    )
    DrainingServer(config, settings.shutdown_grace_s).run()
    return 0
