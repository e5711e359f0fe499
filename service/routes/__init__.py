"""The /v1 API, one module per resource."""

from fastapi import FastAPI

from service.routes import admin, cases, doctors, routing


def install_routes(app: FastAPI) -> None:
    for module in (routing, cases, doctors, admin):
        app.include_router(module.router)
