"""/docs works without internet: the page and everything it loads come from this app."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.docs import SWAGGER_UI_DIR, install_docs

# What each kind of asset must be: an accepted content type and a floor on its size, so an empty
# file, an error page or a stub cannot pass (the real bundle is about 1 MB, the CSS about 140 KB).
ASSETS = {
    ".js": ({"text/javascript", "application/javascript"}, 200_000),
    ".css": ({"text/css"}, 20_000),
    ".png": ({"image/png"}, 200),
}


class _AssetUrls(HTMLParser):
    """Collects every <script src> and <link href> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI(title="offline", docs_url=None, redoc_url=None)

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    install_docs(app)
    return TestClient(app)


def _suffix(url: str) -> str:
    return PurePosixPath(urlsplit(url).path).suffix


def _asset_urls(html: str) -> list[str]:
    parser = _AssetUrls()
    parser.feed(html)
    return parser.urls


def test_docs_page_loads_nothing_from_another_host(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    urls = _asset_urls(html)
    assert {_suffix(url) for url in urls} == set(ASSETS)  # the JS bundle, its CSS, the favicon
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"/docs loads {url!r} from another host"
    assert not re.search(r"https?://", html), "the /docs page names an absolute URL"
    assert "url: '/openapi.json'" in html


def test_every_asset_the_page_names_is_served_whole(client: TestClient) -> None:
    for url in _asset_urls(client.get("/docs").text):
        response = client.get(url)
        assert response.status_code == 200, url
        content_types, min_bytes = ASSETS[_suffix(url)]
        assert response.headers["content-type"].split(";")[0] in content_types, url
        assert len(response.content) >= min_bytes, f"{url}: only {len(response.content)} bytes"


def test_the_bundle_served_is_swagger_uis_own(client: TestClient) -> None:
    bundle = client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.content == (SWAGGER_UI_DIR / "swagger-ui-bundle.js").read_bytes()
    assert b"SwaggerUIBundle" in bundle.content


def test_schema_and_oauth2_redirect_are_served_and_fastapis_cdn_pages_are_gone(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["paths"].keys() == {"/ping"}  # docs routes not in it
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "oauth2" in redirect.text
    assert not re.search(r"https?://", redirect.text)
    assert client.get("/redoc").status_code == 404


def test_docs_urls_follow_the_root_path_behind_a_proxy() -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    install_docs(app)
    html = TestClient(app, root_path="/casematch").get("/docs").text
    assert all(url.startswith("/casematch/docs/static/") for url in _asset_urls(html))
    assert "url: '/casematch/openapi.json'" in html


def test_an_app_without_a_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="openapi_url"):
        install_docs(FastAPI(openapi_url=None, docs_url=None, redoc_url=None))


def test_bundled_swagger_ui_can_render_the_apps_openapi_version(client: TestClient) -> None:
    openapi_version = client.get("/openapi.json").json()["openapi"]
    bundle = client.get("/docs/static/swagger-ui-bundle.js").text
    found = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle)
    assert found, "no PACKAGE_VERSION in swagger-ui-bundle.js"
    if openapi_version.startswith("3.1"):
        assert int(found.group(1)) >= 5, (
            f"Swagger UI {found.group(1)}.x cannot show OpenAPI {openapi_version}"
        )
