"""What route handlers may ask for: the runtime's pieces, the write path and an authorised key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from service.auth import ApiKey, Scope
from service.case_service import CaseService
from service.runtime import Runtime
from service.schemas import IDENTIFIER_PATTERN, Problem


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def case_service(request: Request) -> CaseService:
    value: CaseService = request.app.state.cases
    return value


def requires(scope: Scope):  # type: ignore[no-untyped-def]
    """A dependency that admits a key with `scope` under its rate limit (401/403/429 otherwise)."""

    def check(request: Request, authorization: Annotated[str | None, Header()] = None) -> ApiKey:
        rt = runtime(request)
        key = rt.auth.authorize(authorization, scope)
        rt.limiter.take(key.name)
        request.state.key_name = key.name
        return key

    return Depends(check)


Rt = Annotated[Runtime, Depends(runtime)]
Cases = Annotated[CaseService, Depends(case_service)]
IdInPath = Annotated[str, Path(pattern=IDENTIFIER_PATTERN, description="letters, digits and . _ : -")]

ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "description": description}
    for status, description in {
        400: "malformed JSON",
        401: "missing or unknown API key",
        403: "the key lacks the scope",
        413: "body too large",
        429: "the key is over its rate limit (see Retry-After)",
        422: "a field failed validation (named in `errors`)",
        503: "the case store cannot be reached (see Retry-After)",
    }.items()
}
NOT_FOUND: dict[int | str, dict[str, object]] = {**ERRORS, 404: {"model": Problem}}
