"""Request ids, structured logs, Prometheus metrics and the request size limit, as one middleware.

A log line per request carries the request id, route, status, latency, model version and body
length — never the body. Metrics live in a registry per app, so tests can build many apps.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import problem

logger = logging.getLogger("casematch.access")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "casematch_request_seconds",
            "Request latency by route and status",
            ["route", "method", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.index_size = Gauge(
            "casematch_index_cases", "Cases in the similar-cases index", registry=self.registry
        )
        self.model_version = Gauge(
            "casematch_model_version", "Registered version being served", registry=self.registry
        )
        self.encoder_calls = Gauge(
            "casematch_route_encoder_calls", "Encoder calls made for route requests", registry=self.registry
        )
        self.posts_encoded = Gauge(
            "casematch_route_posts_encoded",
            "Posts encoded for route requests (divided by the calls: the mean micro-batch)",
            registry=self.registry,
        )


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line (the time first, ISO-8601 UTC), with the `extra` fields a request log has."""

    FIELDS = ("request_id", "route", "method", "status", "latency_ms", "model_version", "body_bytes", "key")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {name: getattr(record, name) for name in self.FIELDS if hasattr(record, name)}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class RequestMiddleware:
    """Assigns the request id, refuses oversize bodies, times and logs the request, counts metrics."""

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int, model_version: Callable[[], int | None]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.model_version = model_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        received = 0

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            status = 413
            self._record(scope, status, started, request_id, int(declared))
            return

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        async def capturing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, counting_receive, capturing_send)
        except _BodyTooLarge:
            status = 413
            await self._too_large(scope, receive, send)
        finally:
            self._record(scope, status, started, request_id, received)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, "Request too large", f"bodies are limited to {self.max_body_bytes} bytes")
        await response(scope, receive, send)

    def _record(self, scope: Scope, status: int, started: float, request_id: str, body_bytes: int) -> None:
        elapsed = time.perf_counter() - started
        route = _route_template(scope)
        self.metrics.latency.labels(route, scope["method"], str(status)).observe(elapsed)
        logger.info(
            "request",
            extra={
                "request_id": request_id,
                "route": route,
                "method": scope["method"],
                "status": status,
                "latency_ms": round(elapsed * 1000, 2),
                "model_version": self.model_version(),
                "body_bytes": body_bytes,
            },
        )


class _BodyTooLarge(Exception):
    pass


def _route_template(scope: Scope) -> str:
    """The matched route's path template (/v1/cases/{case_id}), so ids don't explode metric labels."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
