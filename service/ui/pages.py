"""The /ui pages: server-rendered shells that hold no case data and no key.

The browser fetches everything from /v1 with the key the doctor enters (kept in sessionStorage),
so the pages are the same for everyone and can be cached or served offline. A strict
Content-Security-Policy keeps scripts, styles and API calls on this origin.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError

from ml.taxonomy import load_taxonomy
from service.errors import ApiError
from service.schemas import Identifier
from service.ui.strings import EXAMPLES, STRINGS, UiLanguage, ui_language

router = APIRouter(prefix="/ui", include_in_schema=False)

# No inline scripts or styles, no third-party origin: the key can only travel to this service.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("service.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a missing label is a bug, not an empty string
    )


@cache
def static_version() -> str:
    """A hash of the static files, appended to their URLs so an upgrade is never served stale JS."""
    digest = hashlib.sha256()
    folder = resources.files("service.ui").joinpath("static")
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        digest.update(entry.name.encode() + entry.read_bytes())
    return digest.hexdigest()[:12]


@cache
def _specialty_names() -> dict[str, dict[str, str]]:
    return {s.code: {"en": s.name_en, "es": s.name_es} for s in load_taxonomy().specialties}


def _page(request: Request, template: str, *, lang: UiLanguage, case_id: str | None = None) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    config: dict[str, Any] = {
        "page": "case" if case_id else "route",
        "lang": lang,
        "apiRoot": root,
        "caseId": case_id,
        "strings": STRINGS,
        "specialties": _specialty_names(),
        "examples": EXAMPLES,
    }
    html = (
        _templates()
        .get_template(template)
        .render(
            lang=lang,
            t=STRINGS[lang],
            title_key="page_case" if case_id else "page_route",
            root=root,
            version=static_version(),
            case_id=case_id,
            examples=EXAMPLES,
            config=config,
        )
    )
    return HTMLResponse(html, headers=SECURITY_HEADERS)


@router.get("")
def route_page(request: Request, lang: str | None = None) -> HTMLResponse:
    """Post or pick a case and see its specialties, doctors and similar resolved cases."""
    return _page(request, "route.html", lang=ui_language(lang))


@router.get("/cases")
def open_case(request: Request, case_id: Annotated[str, Query(alias="id")] = "") -> Response:
    """The "open a stored case" form, without JavaScript: redirect to the case's page."""
    case_id = _valid_id(case_id.strip())
    return RedirectResponse(f"{request.scope.get('root_path', '')}/ui/cases/{case_id}", status_code=303)


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str, lang: str | None = None) -> HTMLResponse:
    """A stored case (de-identified) with its suggestions and similar cases panel."""
    return _page(request, "case.html", lang=ui_language(lang), case_id=_valid_id(case_id))


def _valid_id(case_id: str) -> str:
    try:
        return _IDENTIFIER.validate_python(case_id)
    except ValidationError:
        raise ApiError(404, "Not Found", f"{case_id[:140]!r} is not a case id") from None
