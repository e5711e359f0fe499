"""The /ui pages as HTTP: mounted or not, no key or case data in them, strict CSP, labels complete.

No browser and no models: the app is built around a stand-in runtime, which the pages never touch.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from fastapi.testclient import TestClient

from ml.privacy import KINDS
from service.app import create_app
from service.runtime import Runtime
from service.settings import Settings
from service.ui.strings import STRINGS

SECRET = "pages-secret-000000000001"
UI_DIR = Path(__file__).resolve().parents[2] / "service" / "ui"


def _client(*, ui_enabled: bool) -> TestClient:
    settings = Settings(ui_enabled=ui_enabled, api_keys=f"ui:{SECRET}:route")
    runtime = cast(Runtime, SimpleNamespace(settings=settings, model_version=None))
    return TestClient(create_app(runtime))


@pytest.fixture(scope="module")
def client() -> TestClient:
    return _client(ui_enabled=True)


def test_ui_disabled_mounts_nothing() -> None:
    client = _client(ui_enabled=False)
    for path in ("/ui", "/ui/cases/c000001", "/ui/static/ui.js", "/ui/static/ui.css", "/"):
        assert client.get(path, follow_redirects=False).status_code == 404, path


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMATCH_UI_ENABLED", "false")
    assert Settings().ui_enabled is False


@pytest.mark.parametrize("path", ["/ui", "/ui/cases/c000380"])
def test_pages_hold_no_key_and_keep_everything_on_this_origin(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert SECRET not in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "default-src 'none'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text), "no external assets"
    assert "<script>" not in response.text and " style=" not in response.text, (
        "nothing inline for the CSP to block"
    )


def test_the_page_language_follows_the_query(client: TestClient) -> None:
    spanish = client.get("/ui", params={"lang": "es"}).text
    assert '<html lang="es">' in spanish and STRINGS["es"]["submit"] in spanish
    assert '<html lang="en">' in client.get("/ui", params={"lang": "xx"}).text


def test_bad_case_ids_are_404_and_the_open_form_redirects(client: TestClient) -> None:
    assert client.get("/ui/cases/-bad").status_code == 404
    assert client.get("/ui/cases", params={"id": "a b"}).status_code == 404
    redirect = client.get("/ui/cases", params={"id": " c000380 "}, follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"] == "/ui/cases/c000380"
    assert client.get("/", follow_redirects=False).headers["location"] == "ui"


def test_static_files_are_served_and_the_pages_stay_out_of_the_api_schema(client: TestClient) -> None:
    script = client.get("/ui/static/ui.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert client.get("/ui/static/ui.css").status_code == 200
    assert not [
        path
        for path in client.get("/openapi.json").json()["paths"]
        if not path.startswith(("/v1", "/healthz", "/readyz", "/metrics"))
    ]


def test_every_label_exists_in_both_languages() -> None:
    assert STRINGS["en"].keys() == STRINGS["es"].keys()
    script = (UI_DIR / "static" / "ui.js").read_text()
    used = set(re.findall(r"""\bt\(\s*["'`]([a-z_0-9]+)["'`]""", script))
    templates = "".join(path.read_text() for path in (UI_DIR / "templates").glob("*.html"))
    used |= set(re.findall(r'data-i18n="([a-z_0-9]+)"', templates))
    assert used and used <= STRINGS["en"].keys(), used - STRINGS["en"].keys()


def test_every_kind_of_redaction_has_a_label() -> None:
    """The stored-case page names each removed kind (`kind_<KIND>`) in the page's language."""
    assert {f"kind_{kind}" for kind in KINDS} <= STRINGS["en"].keys()
