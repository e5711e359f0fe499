"""/docs without a CDN: Swagger UI's JS, CSS and favicon served from the `swagger-ui-bundle-v2`
package (Swagger UI 5, which reads OpenAPI 3.1).

FastAPI's own /docs page loads Swagger UI from cdn.jsdelivr.net, which a hospital network may not
reach. Create the app with its built-in pages off, then install these:

    app = FastAPI(..., docs_url=None, redoc_url=None)
    install_docs(app)

The app's `openapi_url`, `title`, `swagger_ui_oauth2_redirect_url`, `swagger_ui_init_oauth` and
`swagger_ui_parameters` are honoured as FastAPI's default page would. ReDoc is not offered: its
page loads its script and Google Fonts from CDNs too.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

DOCS_URL = "/docs"
STATIC_URL = "/docs/static"
SWAGGER_UI_DIR = Path(swagger_ui_path)  # the package's Swagger UI dist folder


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at /docs and its assets at /docs/static, all from this process.

    Raises:
        ValueError: the app has no OpenAPI schema to show (`openapi_url=None`).
    """
    openapi_url = app.openapi_url
    if openapi_url is None:
        raise ValueError("install_docs needs an app with an openapi_url; it has openapi_url=None")
    redirect_url = app.swagger_ui_oauth2_redirect_url
    app.mount(STATIC_URL, StaticFiles(directory=SWAGGER_UI_DIR), name="swagger-ui-static")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, every URL the page loads must carry it back.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon-32x32.png",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if redirect_url:

        @app.get(redirect_url, include_in_schema=False)
        def swagger_ui_oauth2_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()
