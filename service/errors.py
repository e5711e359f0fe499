"""Every error the API returns is application/problem+json (RFC 9457) that says what was wrong.

Bad input is a 4xx naming the field; an unexpected failure is a 500 whose body holds only the
request id (the log has the rest, never the case text).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.auth import AuthError
from service.ratelimit import RateLimited
from service.schemas import Problem

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("casematch.api")


class ApiError(Exception):
    """An error with an HTTP status the routes raise on purpose (404, 409, 503, ...)."""

    def __init__(
        self, status: int, title: str, detail: str, *, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors  # one {"field", "message"} per invalid field, as for schema errors


def problem(
    status: int, title: str, detail: str, *, errors: list[dict[str, str]] | None = None
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(AuthError, _auth_error)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RateLimited, _rate_limited)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"] if part != "body") or "body",
            "message": error["msg"],
        }
        for error in exc.errors()
    ]
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        return problem(400, "Malformed JSON", "the request body is not valid JSON", errors=errors)
    return problem(422, "Invalid request", f"{len(errors)} field(s) failed validation", errors=errors)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return problem(exc.status_code, _title(exc.status_code), str(exc.detail))


async def _auth_error(request: Request, exc: AuthError) -> JSONResponse:
    response = problem(exc.status, _title(exc.status), exc.detail)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return problem(exc.status, exc.title, exc.detail, errors=exc.errors)


async def _rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
    response = problem(429, "Too Many Requests", str(exc))
    response.headers["Retry-After"] = str(int(exc.retry_after))
    return response


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "-")
    logger.exception("unhandled error", extra={"request_id": request_id, "route": request.url.path})
    return problem(500, "Internal error", f"something failed on our side; quote request id {request_id}")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
