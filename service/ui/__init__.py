"""The doctors' web page (/ui): a case view and a stored case's page, tested in a real browser."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from service.ui.pages import router


def install_ui(app: FastAPI) -> None:
    """Mount /ui, its static files at /ui/static, and send / to /ui."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(packages=[("service.ui", "static")]), name="ui-static")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("ui", status_code=307)
