"""The FastAPI application: /v1 API, the /ui web page, health, readiness, metrics and admin.

`create_app(runtime)` serves an already started `Runtime` (tests build one on the committed
sample); `casematch serve` starts the runtime on the configured home and passes it in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.case_service import CaseService
from service.docs import install_docs
from service.errors import install_error_handlers
from service.observability import Metrics, RequestMiddleware
from service.routes import install_routes
from service.runtime import Runtime
from service.ui import install_ui

DESCRIPTION = """Route hard patient cases to the right specialties, doctors and similar resolved cases,
in English and Spanish. Authenticate with `Authorization: Bearer <api key>`; keys carry the
scopes `route`, `ingest` and `admin`. Errors are `application/problem+json`."""


def create_app(rt: Runtime, *, close_on_shutdown: bool = False) -> FastAPI:
    """The app over `rt`; `close_on_shutdown` closes the runtime (saving the index snapshot) when
    the server shuts down gracefully, e.g. on SIGTERM (uvicorn then re-raises the signal, so code
    after `uvicorn.run` never runs)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if close_on_shutdown:
            rt.close()

    app = FastAPI(
        title="casematch",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_docs serves /docs from the package, not a CDN
        redoc_url=None,
    )
    app.state.runtime = rt
    app.state.cases = CaseService(rt)
    metrics = Metrics()
    app.state.metrics = metrics
    install_error_handlers(app)
    install_routes(app)
    install_docs(app)
    if rt.settings.ui_enabled:  # off: /ui and its static files are not mounted at all (404)
        install_ui(app)
    app.add_middleware(
        RequestMiddleware,
        metrics=metrics,
        max_body_bytes=rt.settings.max_body_bytes,
        model_version=lambda: rt.model_version,
    )

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz(request: Request) -> dict[str, object]:
        """The model and the index are loaded."""
        current: Runtime = request.app.state.runtime
        return {
            "status": "ready",
            "model_version": current.model_version,
            "indexed_cases": len(current.follower.matcher.index),
        }

    @app.get("/metrics", tags=["operations"])
    def prometheus_metrics(request: Request) -> Response:
        current: Runtime = request.app.state.runtime
        metrics.index_size.set(len(current.follower.matcher.index))
        metrics.model_version.set(current.model_version or 0)
        if (queries := current.engine.queries) is not None:
            metrics.encoder_calls.set(queries.batches)
            metrics.posts_encoded.set(queries.posts)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
