"""Every error the API returns is application/problem+json (RFC 9457) that says what was wrong.

Bad input is a 4xx naming the field; a store that cannot be reached is a 503 with Retry-After; an
unexpected failure is a 500 whose body holds only the request id (the log has the rest, never the
case text). Each domain error is mapped here, once: route handlers never catch them.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.auth import AuthError
from service.domain_errors import InvalidFieldError, UnknownLanguageError
from service.ratelimit import RateLimited
from service.schemas import Problem
from service.store.errors import (
    AnswerConflictError,
    CaseConflictError,
    StoreUnavailableError,
    UnknownCaseError,
    UnknownDoctorError,
)

PROBLEM_JSON = "application/problem+json"
STORE_RETRY_AFTER_SECONDS = 2  # a restarting database is usually back within seconds
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
    app.add_exception_handler(InvalidFieldError, _invalid_field)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownLanguageError, _unknown_language)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownCaseError, _unknown_case)  # type: ignore[arg-type]
    app.add_exception_handler(UnknownDoctorError, _unknown_doctor)  # type: ignore[arg-type]
    app.add_exception_handler(CaseConflictError, _case_conflict)  # type: ignore[arg-type]
    app.add_exception_handler(AnswerConflictError, _answer_conflict)  # type: ignore[arg-type]
    app.add_exception_handler(StoreUnavailableError, _store_unavailable)  # type: ignore[arg-type]
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


async def _invalid_field(request: Request, exc: InvalidFieldError) -> JSONResponse:
    return problem(422, "Invalid request", exc.detail, errors=[{"field": exc.field, "message": exc.message}])


async def _unknown_language(request: Request, exc: UnknownLanguageError) -> JSONResponse:
    return problem(422, "Language unknown", str(exc))


async def _unknown_case(request: Request, exc: UnknownCaseError) -> JSONResponse:
    return problem(404, "Not Found", f"no case {exc.case_id!r}")


async def _unknown_doctor(request: Request, exc: UnknownDoctorError) -> JSONResponse:
    return problem(404, "Not Found", f"no doctor {exc.doctor_id!r}")


async def _case_conflict(request: Request, exc: CaseConflictError) -> JSONResponse:
    return problem(
        409,
        "Conflict",
        f"case {exc.case_id!r} exists with other content; PUT /v1/cases/{exc.case_id} replaces it",
    )


async def _answer_conflict(request: Request, exc: AnswerConflictError) -> JSONResponse:
    return problem(
        409, "Conflict", f"doctor {exc.doctor_id} already answered case {exc.case_id} at another time"
    )


async def _store_unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "-")
    logger.warning("case store unavailable", extra={"request_id": request_id, "route": request.url.path})
    response = problem(503, "Service Unavailable", "the case store cannot be reached; retry shortly")
    response.headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
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
