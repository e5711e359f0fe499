"""The HTTP API end to end on the committed sample: real store, index, models and de-identification."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from mlflow import MlflowClient
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from typer.testing import CliRunner

from ml.registry import CHAMPION, MODEL_NAME, champion_version, promote
from ml.synthetic.world import read_table
from service.app import create_app
from service.cli import app as cli
from service.ratelimit import RateLimiter
from service.runtime import Runtime
from service.settings import Settings
from service.store import CaseStore
from tests.integration.conftest import registry_copy

ROUTE_KEY = "route-secret-0000000001"
INGEST_KEY = "ingest-secret-000000001"
ADMIN_KEY = "admin-secret-0000000001"
EVERY_SCOPE_KEY = "fuzz-secret-00000000001"
KEYS = (
    f"platform:{ROUTE_KEY}:route,loader:{INGEST_KEY}:ingest+route,ops:{ADMIN_KEY}:admin,"
    f"fuzz:{EVERY_SCOPE_KEY}:route+ingest+admin"
)
SPANISH_FONTAN = {
    "title": "Niño de 9 años con Fontan que expulsa moldes al toser",
    "text": "Operado de Fontan. Tos con expulsión de moldes gomosos y ramificados, como ramitas. Satura 85%.",
}


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _store(client: TestClient) -> CaseStore:
    store: CaseStore = client.app.state.runtime.store  # type: ignore[attr-defined]
    return store


def _post_case(client: TestClient, case_id: str, created_at: str) -> None:
    case = {"id": case_id, **SPANISH_FONTAN, "language": "es", "created_at": created_at}
    posted = client.post("/v1/cases", json=case, headers=_auth(INGEST_KEY))
    assert posted.status_code == 201, posted.text


def _put_doctor(client: TestClient, doctor_id: str) -> None:
    doctor = {"specialties": ["pediatric_pulmonology"], "languages": ["es"]}
    assert client.put(f"/v1/doctors/{doctor_id}", json=doctor, headers=_auth(INGEST_KEY)).status_code == 200


def _feedback_on(client: TestClient, *case_ids: str) -> list[tuple[str, str | None, str | None]]:
    """What the store exports for training, restricted to these cases: (case, similar case, doctor)."""
    return [
        (f.case_id, f.similar_case_id, f.doctor_id)
        for f in _store(client).all_feedback()
        if f.case_id in case_ids or f.similar_case_id in case_ids
    ]


def _error_fields(problem: dict[str, Any]) -> list[str]:
    return [e["field"] for e in problem["errors"]]


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory,
    small_world_dir: Path,
    module_database_url: str,
    trained_home: Path,
) -> Iterator[TestClient]:
    """A service on the small generated world (800 cases): every post is de-identified on the way in."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CASEMATCH_DATABASE_URL", module_database_url)
        env.setenv("CASEMATCH_MLFLOW_TRACKING_URI", registry_copy(trained_home, home))
        env.setenv("CASEMATCH_HOME", str(home))
        env.setenv("CASEMATCH_SYNTHETIC_DIR", str(small_world_dir.parent))
        env.setenv("CASEMATCH_SEED_WORLD", small_world_dir.name)
        env.setenv("CASEMATCH_API_KEYS", KEYS)
        env.setenv("HF_HUB_OFFLINE", "1")
        runtime = Runtime.start(Settings(), watch=False)
        with TestClient(create_app(runtime)) as test_client:
            yield test_client
        runtime.close()


def test_keys_and_scopes_guard_every_route(client: TestClient) -> None:
    missing = client.post("/v1/route", json={"case": SPANISH_FONTAN})
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/route", json={"case": SPANISH_FONTAN}, headers=_auth("nope")).status_code == 401
    assert (
        client.post("/v1/cases", json={"id": "x1", **SPANISH_FONTAN}, headers=_auth(ROUTE_KEY)).status_code
        == 403
    )
    assert client.post("/v1/admin/reload", headers=_auth(ROUTE_KEY)).status_code == 403


def test_a_spanish_post_is_routed_to_pediatric_pulmonology_with_english_reports(
    client: TestClient, small_world_dir: Path
) -> None:
    response = client.post(
        "/v1/route", json={"case": SPANISH_FONTAN, "limit_doctors": 5}, headers=_auth(ROUTE_KEY)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["language"] == "es" and body["model"] == {"name": "case-router", "version": 1}
    assert body["request_id"] == response.headers["x-request-id"], (
        "one id in the body, the header and the logs"
    )
    codes = [s["code"] for s in body["specialties"]]
    assert "pediatric_pulmonology" in codes
    assert 0 < len(body["doctors"]) <= 5 and all(d["reasons"] for d in body["doctors"])
    for doctor in body["doctors"]:  # each English reason has its code, for a page to translate
        assert len(doctor["reason_codes"]) == len(doctor["reasons"])
        language_reasons = [
            r for r in doctor["reason_codes"] if r["code"] in ("reads_language", "needs_translation")
        ]
        assert language_reasons == [{"code": language_reasons[0]["code"], "params": {"language": "es"}}]
    labels = {r["case_id"]: r["condition_id"] for r in read_table(small_world_dir, "case_labels").to_pylist()}
    similar = body["similar_cases"]
    assert any(labels[s["case_id"]] == "plastic_bronchitis_fontan" and s["language"] == "en" for s in similar)
    assert all(s["diagnosis"] for s in similar), "similar cases are resolved cases"
    fontan_reports = [s for s in similar if any(t["term"].lower() == "fontan" for t in s["shared_terms"])]
    assert fontan_reports, "a doctor sees which words the suggestion shares with the post"
    assert all(s["excerpt"] for s in similar)
    assert body["urgency"]["level"] in ("emergent", "urgent", "routine")


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"case": {"text": "only a body, no title here"}}, 422, "case.title"),
        ({"case": {**SPANISH_FONTAN, "language": "fr"}}, 422, "case.language"),
        ({"case": SPANISH_FONTAN, "case_id": "c000001"}, 422, "body"),
        ({"case": SPANISH_FONTAN, "limit_doctors": 500}, 422, "limit_doctors"),
    ],
)
def test_bad_requests_name_the_field(
    client: TestClient, payload: dict[str, object], status: int, field: str
) -> None:
    response = client.post("/v1/route", json=payload, headers=_auth(ROUTE_KEY))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]


def test_times_from_the_future_or_before_their_case_are_refused(client: TestClient) -> None:
    """Training splits and activity windows are cut by these times: a bad one is a 422, not data."""
    case = {"id": "api-time-1", **SPANISH_FONTAN, "created_at": "9999-12-31T00:00:00Z"}
    future = client.post("/v1/cases", json=case, headers=_auth(INGEST_KEY))
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "created_at"
    assert client.get("/v1/cases/api-time-1", headers=_auth(ROUTE_KEY)).status_code == 404
    posted = client.post(
        "/v1/cases", json={**case, "created_at": "2026-06-01T12:00:00Z"}, headers=_auth(INGEST_KEY)
    )
    assert posted.status_code == 201, posted.text
    early = client.post(
        "/v1/cases/api-time-1/answers",
        json={"doctor_id": "d00001", "created_at": "2026-06-01T11:59:00Z"},
        headers=_auth(INGEST_KEY),
    )
    assert early.status_code == 422 and early.json()["errors"][0]["field"] == "created_at", early.text
    later = client.post(
        "/v1/cases/api-time-1/answers",
        json={"doctor_id": "d00001", "created_at": "2026-06-01T13:00:00Z"},
        headers=_auth(INGEST_KEY),
    )
    assert later.status_code == 201, later.text


def test_nul_characters_are_refused_not_stored(client: TestClient) -> None:
    """PostgreSQL cannot store NUL: found by the schemathesis run below, once a 500 on PostgreSQL."""
    case = {"id": "nul-1", "title": "Chest pain", "text": "Crushing chest pain\x00 with ST elevation"}
    response = client.post("/v1/cases", json=case, headers=_auth(INGEST_KEY))
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["text"]
    assert client.get("/v1/cases/nul%00id", headers=_auth(ROUTE_KEY)).status_code == 422
    assert client.get("/v1/cases/nul-1", headers=_auth(ROUTE_KEY)).status_code == 404


def test_malformed_and_oversize_bodies_are_4xx(client: TestClient) -> None:
    broken = client.post(
        "/v1/route", content=b'{"case": ', headers={**_auth(ROUTE_KEY), "content-type": "application/json"}
    )
    assert broken.status_code == 400
    huge = client.post(
        "/v1/route", content=b"x" * 300_000, headers={**_auth(ROUTE_KEY), "content-type": "application/json"}
    )
    assert huge.status_code == 413


def test_ingest_is_idempotent_conflicts_are_409_and_text_is_deidentified(client: TestClient) -> None:
    case = {
        "id": "api-deid-1",
        "title": "Chest pain in a 60 year old man",
        "text": "Patient John Miller, MRN 4417739, phone +1 415 555 0199, email john.miller@example.com. "
        "Crushing chest pain with ST elevation in the anterior leads.",
        "language": "en",
    }
    first = client.post("/v1/cases", json=case, headers=_auth(INGEST_KEY))
    assert first.status_code == 201, first.text
    assert client.post("/v1/cases", json=case, headers=_auth(INGEST_KEY)).status_code == 201
    other = client.post(
        "/v1/cases", json={**case, "title": "Another title entirely"}, headers=_auth(INGEST_KEY)
    )
    assert other.status_code == 409
    stored = client.get("/v1/cases/api-deid-1", headers=_auth(ROUTE_KEY)).json()
    for identifier in ("John Miller", "4417739", "555 0199", "john.miller@example.com"):
        assert identifier not in stored["text"]
    assert "ST elevation" in stored["text"]


def test_the_poster_sees_what_was_removed_by_kind_never_the_text(client: TestClient) -> None:
    case = {
        "title": "Dolor torácico en varón de 60 años",
        "text": "Paciente Juan Pérez García, NHC 4417739, tel. 600 123 456. "
        "Dolor opresivo con elevación del ST.",
        "language": "es",
    }
    expected = {"NAME": 1, "PHONE": 1, "RECORD_ID": 1}
    created = client.post("/v1/cases", json={"id": "api-deid-2", **case}, headers=_auth(INGEST_KEY))
    assert created.status_code == 201, created.text
    assert created.json()["redactions"] == expected
    replaced = client.put(
        "/v1/cases/api-deid-2",
        json={**case, "text": case["text"] + " Sin más datos."},
        headers=_auth(INGEST_KEY),
    )
    assert replaced.json()["redactions"] == expected
    read_back = client.get("/v1/cases/api-deid-2", headers=_auth(ROUTE_KEY)).json()
    assert read_back["redactions"] == expected, "a case read later reports what its readers see"
    routed = client.post("/v1/route", json={"case": case}, headers=_auth(ROUTE_KEY)).json()
    assert routed["redactions"] == expected
    clean = client.post("/v1/route", json={"case": SPANISH_FONTAN}, headers=_auth(ROUTE_KEY)).json()
    assert clean["redactions"] == {}
    for body in (created.json(), read_back, routed):
        assert "Juan" not in str(body) and "600 123 456" not in str(body)


def test_a_deleted_case_is_gone_from_store_index_and_results(client: TestClient) -> None:
    case = {
        "id": "api-erase-1",
        "title": "Moldes bronquiales tras Fontan",
        "text": SPANISH_FONTAN["text"],
        "language": "es",
    }
    assert client.post("/v1/cases", json=case, headers=_auth(INGEST_KEY)).status_code == 201
    resolved = client.post(
        "/v1/cases/api-erase-1/resolution",
        json={"diagnosis": "bronquitis plástica", "specialties": ["pediatric_pulmonology"]},
        headers=_auth(INGEST_KEY),
    )
    assert resolved.status_code == 200 and resolved.json()["resolved"]
    found = client.post(
        "/v1/route", json={"case": SPANISH_FONTAN, "limit_similar": 10}, headers=_auth(ROUTE_KEY)
    )
    assert "api-erase-1" in [s["case_id"] for s in found.json()["similar_cases"]]

    assert client.delete("/v1/cases/api-erase-1", headers=_auth(INGEST_KEY)).status_code == 204
    assert client.get("/v1/cases/api-erase-1", headers=_auth(ROUTE_KEY)).status_code == 404
    after = client.post(
        "/v1/route", json={"case": SPANISH_FONTAN, "limit_similar": 10}, headers=_auth(ROUTE_KEY)
    )
    assert "api-erase-1" not in [s["case_id"] for s in after.json()["similar_cases"]]
    assert (
        client.post("/v1/route", json={"case_id": "api-erase-1"}, headers=_auth(ROUTE_KEY)).status_code == 404
    )


def test_answers_doctors_and_unavailability(client: TestClient) -> None:
    routed = client.post("/v1/route", json={"case": SPANISH_FONTAN}, headers=_auth(ROUTE_KEY)).json()
    first = routed["doctors"][0]["doctor_id"]
    away = client.put(
        f"/v1/doctors/{first}",
        json={"specialties": ["pediatric_pulmonology"], "languages": ["es"], "available": False},
        headers=_auth(INGEST_KEY),
    )
    assert away.status_code == 200
    again = client.post("/v1/route", json={"case": SPANISH_FONTAN}, headers=_auth(ROUTE_KEY)).json()
    assert first not in [d["doctor_id"] for d in again["doctors"]]
    bad_zone = client.put(
        "/v1/doctors/new-doc",
        json={"specialties": ["cardiology"], "languages": ["en"], "timezone": "Mars/Base"},
        headers=_auth(INGEST_KEY),
    )
    assert bad_zone.status_code == 422
    answer = client.post("/v1/cases/c000001/answers", json={"doctor_id": first}, headers=_auth(INGEST_KEY))
    assert answer.status_code == 201
    assert (
        client.post(
            "/v1/cases/nope/answers", json={"doctor_id": first}, headers=_auth(INGEST_KEY)
        ).status_code
        == 404
    )


def test_feedback_on_a_similar_case_or_a_doctor_is_stored_and_exported(client: TestClient) -> None:
    _post_case(client, "fb-case-1", "2026-06-01T12:00:00Z")
    _post_case(client, "fb-similar-1", "2026-05-01T08:00:00Z")
    _put_doctor(client, "fb-doc-1")

    on_case = client.post(
        "/v1/cases/fb-case-1/feedback",
        json={
            "similar_case_id": "fb-similar-1",
            "useful": True,
            "by": "fb-doc-1",
            "created_at": "2026-06-02T11:00:00+02:00",
        },
        headers=_auth(ROUTE_KEY),
    )
    assert on_case.status_code == 201, on_case.text
    body = on_case.json()
    assert body["id"]
    assert datetime.fromisoformat(body.pop("created_at")) == datetime(2026, 6, 2, 9, tzinfo=UTC)
    assert {k: v for k, v in body.items() if k != "id"} == {
        "case_id": "fb-case-1",
        "similar_case_id": "fb-similar-1",
        "doctor_id": None,
        "useful": True,
        "by": "fb-doc-1",
    }
    on_doctor = client.post(
        "/v1/cases/fb-case-1/feedback",
        json={"doctor_id": "fb-doc-1", "useful": False},
        headers=_auth(ROUTE_KEY),
    )
    assert on_doctor.status_code == 201, on_doctor.text
    assert on_doctor.json()["by"] is None and on_doctor.json()["similar_case_id"] is None
    received = datetime.fromisoformat(on_doctor.json()["created_at"])
    assert abs(datetime.now(UTC) - received) < timedelta(minutes=1), "default: when it was received"
    assert on_doctor.json()["id"] != body["id"]

    exported = [f for f in _store(client).all_feedback() if f.case_id == "fb-case-1"]
    assert [(f.feedback_id, f.similar_case_id, f.doctor_id, f.useful, f.by) for f in exported] == [
        (body["id"], "fb-similar-1", None, True, "fb-doc-1"),
        (on_doctor.json()["id"], None, "fb-doc-1", False, None),
    ], "exported oldest first"
    assert exported[0].created_at == datetime(2026, 6, 2, 9, tzinfo=UTC)
    assert (
        client.post(
            "/v1/cases/fb-case-1/feedback",
            json={"doctor_id": "fb-doc-1", "useful": True},
            headers=_auth(ADMIN_KEY),
        ).status_code
        == 403
    )


def test_bad_feedback_is_refused_naming_the_field(client: TestClient) -> None:
    _post_case(client, "fb-case-2", "2026-06-01T12:00:00Z")
    _post_case(client, "fb-similar-2", "2026-06-03T12:00:00Z")
    _put_doctor(client, "fb-doc-2")

    def send(case_id: str, **body: object) -> tuple[int, dict[str, Any]]:
        response = client.post(
            f"/v1/cases/{case_id}/feedback", json={"useful": True, **body}, headers=_auth(ROUTE_KEY)
        )
        return response.status_code, response.json()

    assert send("fb-nope", doctor_id="fb-doc-2") == (
        404,
        {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no case 'fb-nope'"},
    )
    for body, field in [
        ({"similar_case_id": "fb-nope"}, "similar_case_id"),
        ({"similar_case_id": "fb-case-2"}, "similar_case_id"),  # never its own similar case
        ({"doctor_id": "fb-nope"}, "doctor_id"),
        ({"doctor_id": "fb-doc-2", "created_at": "2026-06-01T11:59:00Z"}, "created_at"),  # before the case
        ({"similar_case_id": "fb-similar-2", "created_at": "2026-06-02T12:00:00Z"}, "created_at"),
        ({"doctor_id": "fb-doc-2", "created_at": "9999-12-31T00:00:00Z"}, "created_at"),  # future
        ({"doctor_id": "fb-doc-2", "created_at": "2026-06-02T12:00:00"}, "created_at"),  # no zone
        ({"doctor_id": "fb-doc-2", "by": "not an id"}, "by"),
        ({"doctor_id": "fb-doc-2", "useful": "perhaps"}, "useful"),
    ]:
        status, problem = send("fb-case-2", **body)
        assert status == 422, (body, problem)
        assert _error_fields(problem) == [field], body
    _, early = send("fb-case-2", doctor_id="fb-doc-2", created_at="2026-06-01T11:59:00Z")
    assert early["detail"] == "feedback cannot come before its case"
    assert early["errors"][0]["message"] == (
        "2026-06-01T11:59:00+00:00 is before case 'fb-case-2' was posted (2026-06-01T12:00:00+00:00)"
    )
    _, unknown_doctor = send("fb-case-2", doctor_id="fb-nope")
    assert unknown_doctor["errors"][0]["message"] == "no doctor 'fb-nope'"
    for body in ({"similar_case_id": "fb-similar-2", "doctor_id": "fb-doc-2"}, {}):
        status, problem = send("fb-case-2", **body)
        assert status == 422, body
        assert "exactly one of `similar_case_id` and `doctor_id`" in problem["errors"][0]["message"]
    assert _feedback_on(client, "fb-case-2", "fb-similar-2") == [], "nothing refused was stored"


def test_erasing_a_case_erases_the_feedback_on_it_and_naming_it(client: TestClient) -> None:
    for case_id in ("fb-erase-a", "fb-erase-b", "fb-erase-c"):
        _post_case(client, case_id, "2026-06-01T12:00:00Z")
    _put_doctor(client, "fb-doc-3")
    for case_id, target in [
        ("fb-erase-a", {"similar_case_id": "fb-erase-b"}),  # names the erased case
        ("fb-erase-b", {"similar_case_id": "fb-erase-c"}),  # on the erased case
        ("fb-erase-b", {"doctor_id": "fb-doc-3"}),  # on the erased case
        ("fb-erase-c", {"similar_case_id": "fb-erase-a"}),  # unrelated: stays
        ("fb-erase-c", {"doctor_id": "fb-doc-3"}),  # unrelated: stays
    ]:
        given = client.post(
            f"/v1/cases/{case_id}/feedback", json={"useful": True, **target}, headers=_auth(ROUTE_KEY)
        )
        assert given.status_code == 201, given.text
    assert len(_feedback_on(client, "fb-erase-a", "fb-erase-b", "fb-erase-c")) == 5

    assert client.delete("/v1/cases/fb-erase-b", headers=_auth(INGEST_KEY)).status_code == 204
    assert _feedback_on(client, "fb-erase-a", "fb-erase-b", "fb-erase-c") == [
        ("fb-erase-c", "fb-erase-a", None),
        ("fb-erase-c", None, "fb-doc-3"),
    ]
    on_erased = client.post(
        "/v1/cases/fb-erase-b/feedback",
        json={"doctor_id": "fb-doc-3", "useful": True},
        headers=_auth(ROUTE_KEY),
    )
    assert on_erased.status_code == 404
    naming_erased = client.post(
        "/v1/cases/fb-erase-a/feedback",
        json={"similar_case_id": "fb-erase-b", "useful": True},
        headers=_auth(ROUTE_KEY),
    )
    assert naming_erased.status_code == 422
    assert _error_fields(naming_erased.json()) == ["similar_case_id"]


def test_resolutions_are_never_dated_before_their_case_and_erased_cases_take_no_writes(
    client: TestClient,
) -> None:
    _post_case(client, "time-res-1", "2026-06-01T12:00:00Z")
    resolution = {"diagnosis": "bronquitis plástica", "specialties": ["pediatric_pulmonology"]}

    def resolve(created_at: str) -> tuple[int, dict[str, Any]]:
        response = client.post(
            "/v1/cases/time-res-1/resolution",
            json={**resolution, "created_at": created_at},
            headers=_auth(INGEST_KEY),
        )
        return response.status_code, response.json()

    for created_at in ("2026-06-01T11:59:59Z", "9999-12-31T00:00:00Z"):  # before the case; the future
        status, problem = resolve(created_at)
        assert status == 422 and _error_fields(problem) == ["created_at"], created_at
    assert resolve("2026-06-01T11:59:59Z")[1]["detail"] == "a resolution cannot come before its case"
    assert client.get("/v1/cases/time-res-1", headers=_auth(ROUTE_KEY)).json()["resolved"] is False
    status, resolved = resolve("2026-06-03T08:00:00Z")
    assert status == 200 and resolved["resolved"] is True
    stored = _store(client).get_case("time-res-1").resolution
    assert stored is not None and stored.resolved_at == datetime(2026, 6, 3, 8, tzinfo=UTC)

    assert client.delete("/v1/cases/time-res-1", headers=_auth(INGEST_KEY)).status_code == 204
    answer = client.post(
        "/v1/cases/time-res-1/answers",
        json={"doctor_id": "d00001", "created_at": "2026-06-04T08:00:00Z"},
        headers=_auth(INGEST_KEY),
    )
    assert answer.status_code == 404 and answer.json()["detail"] == "no case 'time-res-1'"
    assert resolve("2026-06-04T08:00:00Z")[0] == 404
    assert _store(client).answers_for_case("time-res-1") == []


def test_similar_cases_of_a_stored_case_and_the_specialty_list(
    client: TestClient, small_world_dir: Path
) -> None:
    # a resolved case: only those are similar-case candidates, so leaving it out means something
    case_id = sorted(read_table(small_world_dir, "resolutions").column("case_id").to_pylist())[0]
    similar = client.get(f"/v1/cases/{case_id}/similar?limit=3", headers=_auth(ROUTE_KEY))
    assert similar.status_code == 200
    ids = [s["case_id"] for s in similar.json()]
    assert 0 < len(ids) <= 3 and case_id not in ids
    assert all(s["diagnosis"] for s in similar.json())
    # Its own text posted as a new case finds it first: the exclusion hid it, not the search.
    stored = client.get(f"/v1/cases/{case_id}", headers=_auth(ROUTE_KEY)).json()
    as_new = client.post(
        "/v1/route",
        json={"case": {"title": stored["title"], "text": stored["text"]}},
        headers=_auth(ROUTE_KEY),
    )
    assert as_new.json()["similar_cases"][0]["case_id"] == case_id
    bad = client.get("/v1/cases/c000001/similar?limit=0", headers=_auth(ROUTE_KEY))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.limit"
    specialties = client.get("/v1/specialties", headers=_auth(ROUTE_KEY)).json()
    assert len(specialties) == 63
    assert {
        "code": "pediatric_pulmonology",
        "name_en": "Pediatric Pulmonology",
        "name_es": "Neumología Pediátrica",
        "parent": "pediatrics",
    } in specialties


def test_operations_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["model_version"] == 1 and ready["indexed_cases"] >= 800
    metrics = client.get("/metrics").text
    assert "casematch_request_seconds_bucket" in metrics and 'route="/v1/route"' in metrics
    calls, posts = (
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith(("casematch_route_encoder_calls ", "casematch_route_posts_encoded "))
    )
    assert 1 <= calls <= posts, "every routed post went through the encoder's micro-batches"
    assert client.post("/v1/admin/reload", headers=_auth(ADMIN_KEY)).json() == {"model_version": 1}
    assert client.get("/openapi.json").json()["paths"]["/v1/route"]["post"]["requestBody"]


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(client: TestClient) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    saved = runtime.limiter
    runtime.limiter = RateLimiter(per_minute=2)
    try:
        codes = [client.get("/v1/specialties", headers=_auth(ROUTE_KEY)).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        limited = client.get("/v1/specialties", headers=_auth(ROUTE_KEY))
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get("/v1/specialties", headers=_auth(INGEST_KEY)).status_code == 200
    finally:
        runtime.limiter = saved


def test_concurrent_ingest_and_routing_lose_nothing(client: TestClient) -> None:
    statuses: list[int] = []

    def ingest(worker: int) -> None:
        for n in range(5):
            case = {
                "id": f"conc-{worker}-{n}",
                "title": f"Dolor torácico {worker}-{n}",
                "text": "Varón con dolor opresivo y troponina elevada.",
                "language": "es",
            }
            statuses.append(client.post("/v1/cases", json=case, headers=_auth(INGEST_KEY)).status_code)

    def route() -> None:
        for _ in range(5):
            statuses.append(
                client.post("/v1/route", json={"case": SPANISH_FONTAN}, headers=_auth(ROUTE_KEY)).status_code
            )

    threads = [threading.Thread(target=ingest, args=(w,)) for w in range(3)] + [
        threading.Thread(target=route) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(statuses)) == [200, 201] and len(statuses) == 25
    stored = [
        client.get(f"/v1/cases/conc-{w}-{n}", headers=_auth(ROUTE_KEY)).status_code
        for w in range(3)
        for n in range(5)
    ]
    assert stored == [200] * 15
    assert client.get("/readyz").json()["indexed_cases"] >= 800 + 15


def test_a_new_champion_is_swapped_in_under_load_without_failed_requests(
    client: TestClient, small_world_dir: Path
) -> None:
    runner = CliRunner()
    trained = runner.invoke(cli, ["train", "--world", small_world_dir.name, "--corpora", ""])
    assert trained.exit_code == 0, trained.output
    assert runner.invoke(cli, ["promote"]).exit_code == 0  # same data, same metrics: promoted

    outcomes: list[tuple[int, int]] = []

    def hammer() -> None:
        for _ in range(8):
            response = client.post("/v1/route", json={"case": SPANISH_FONTAN}, headers=_auth(ROUTE_KEY))
            outcomes.append((response.status_code, response.json()["model"]["version"]))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    swapped = client.post("/v1/admin/reload", headers=_auth(ADMIN_KEY))
    for thread in threads:
        thread.join()
    assert swapped.json() == {"model_version": 2}
    assert {status for status, _ in outcomes} == {200} and len(outcomes) == 32
    assert {version for _, version in outcomes} <= {1, 2}
    assert client.get("/readyz").json()["model_version"] == 2


def test_a_restarted_service_serves_every_acknowledged_write(client: TestClient) -> None:
    """Writes after the last index snapshot; the process then dies without saving anything."""
    case = {
        "id": "restart-1",
        "title": "Moldes bronquiales tras Fontan",
        "text": SPANISH_FONTAN["text"],
        "language": "es",
    }
    assert client.post("/v1/cases", json=case, headers=_auth(INGEST_KEY)).status_code == 201
    resolution = {"diagnosis": "bronquitis plástica", "specialties": ["pediatric_pulmonology"]}
    assert (
        client.post("/v1/cases/restart-1/resolution", json=resolution, headers=_auth(INGEST_KEY)).status_code
        == 200
    )
    erased = client.post("/v1/route", json={"case": SPANISH_FONTAN}, headers=_auth(ROUTE_KEY)).json()
    victim = next(s["case_id"] for s in erased["similar_cases"] if s["case_id"] != "restart-1")
    assert client.delete(f"/v1/cases/{victim}", headers=_auth(INGEST_KEY)).status_code == 204

    restarted = Runtime.start(Settings(), watch=False)  # same home, store and index snapshot
    try:
        with TestClient(create_app(restarted)) as again:
            body = {"case": SPANISH_FONTAN, "limit_similar": 20}
            similar = [
                s["case_id"]
                for s in again.post("/v1/route", json=body, headers=_auth(ROUTE_KEY)).json()["similar_cases"]
            ]
            assert "restart-1" in similar
            assert victim not in similar
            assert again.get(f"/v1/cases/{victim}", headers=_auth(ROUTE_KEY)).status_code == 404
    finally:
        restarted.close()


def _register_the_champion_again() -> int:
    """A new registered version with the champion's artifacts: what `casematch train` on the same
    data would register, without its minutes of training."""
    registry = MlflowClient()
    champion = registry.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert champion.source is not None
    return int(registry.create_model_version(MODEL_NAME, champion.source, run_id=champion.run_id).version)


def test_a_champion_promoted_in_mlflow_is_served_by_the_poller_without_a_reload(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service follows the alias by itself every CASEMATCH_MODEL_POLL_SECONDS: no call to
    POST /v1/admin/reload here. A second runtime on `client`'s home, store and registry, polling."""
    interval = 2.0  # loading a bundle takes about 2 s on two busy cores: 1 s would leave no margin
    monkeypatch.setenv("CASEMATCH_MODEL_POLL_SECONDS", str(interval))
    polling = Runtime.start(Settings(), watch=True)
    try:
        with TestClient(create_app(polling)) as app:

            def served() -> int:
                version: int = app.get("/readyz").json()["model_version"]
                return version

            first = champion_version()
            bundle = polling.engine.bundle
            assert first is not None and served() == first
            time.sleep(2.5 * interval)  # a few polls with nothing new: nothing changes, nothing reloads
            assert served() == first and polling.engine.bundle is bundle

            new = _register_the_champion_again()
            assert promote(new).promoted
            promoted_at = time.monotonic()
            while served() != new and time.monotonic() - promoted_at < 3 * interval:
                time.sleep(0.05)
            waited = time.monotonic() - promoted_at
            assert served() == new, f"version {new} promoted {waited:.1f} s ago, still serving {served()}"
            assert polling.engine.bundle is not bundle
            routed = app.post("/v1/route", json={"case": SPANISH_FONTAN}, headers=_auth(ROUTE_KEY))
            assert routed.json()["model"] == {"name": MODEL_NAME, "version": new}
    finally:
        polling.close()


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_no_request_the_schema_allows_or_forbids_gets_a_5xx(client: TestClient, mode: GenerationMode) -> None:
    """Schemathesis: generated bodies, paths and queries for every operation (valid ones, and ones
    the schema forbids), sent with a key of every scope: never a 5xx."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    exercised = 0
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def never_a_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=_auth(EVERY_SCOPE_KEY), checks=[not_a_server_error])

        try:
            never_a_server_error()
            exercised += 1
        except Unsatisfiable:  # nothing to get wrong, e.g. a GET without parameters has no negative case
            assert mode is GenerationMode.NEGATIVE, operation.label
    # every operation has valid requests; those with a body or typed parameters have invalid ones too
    assert exercised >= (len(operations) if mode is GenerationMode.POSITIVE else 7), exercised
