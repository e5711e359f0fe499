"""The app of one `casematch serve --workers N` process, built by uvicorn in each worker.

The parent process has already migrated and seeded the store, caught the index snapshot up and
registered a champion (`casematch serve` does it once); each worker starts from that snapshot,
rebuilds the routing state from the store and follows the store's change feed from then on.
Settings come from the environment (the parent puts everything it decided there).
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from service.app import create_app
from service.logs import configure_json_logging
from service.runtime import Runtime
from service.settings import Settings

VERBOSE_ENV = "CASEMATCH_VERBOSE"
logger = logging.getLogger("casematch.worker")


def create_worker_app() -> FastAPI:
    verbose = os.environ.get(VERBOSE_ENV) == "1"
    configure_json_logging(verbose=verbose)
    settings = Settings()
    threadpool_limits(limits=settings.encoder_threads)  # see `casematch serve`: one request, one thread
    runtime = Runtime.start(settings)
    configure_json_logging(verbose=verbose)  # again: libraries loaded by the runtime attached their own
    logger.info("worker %d serving model version %s", os.getpid(), runtime.model_version)
    return create_app(runtime, close_on_shutdown=True)
