"""The store's export is what the platform posted: the sample world through the HTTP API into an
empty service, out again as `PlatformData`, on SQLite and PostgreSQL.

The posts go in raw (planted identifiers and all) and the service de-identifies them on the way
in, so the export's text is the stored, de-identified text; everything else comes back as posted.
By default the first 200 cases by posting time (with their answers, resolutions and every doctor)
make the trip; the whole sample (2,000 cases, 8,755 answers) is the `slow` variant.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml.data.records import AnswerRecord, FeedbackRecord, PlatformData
from ml.data.synthetic import RAW, SyntheticWorld
from ml.paths import SAMPLE_WORLD_DIR
from ml.registry import MODEL_NAME, champion_version
from ml.synthetic.world import read_table
from service.api_client import PostError, post_platform_data
from service.app import create_app
from service.cli import app as cli
from service.runtime import Runtime
from service.settings import Settings
from service.store import CaseStore
from service.store.export import credential_free_url, export_platform_data
from tests.postgres import postgres_schema_url

LOADER_KEY = "loader-secret-000000001"
FONTAN = {
    "title": "Niño de 9 años con Fontan que expulsa moldes al toser",
    "text": "Operado de Fontan. Tos con expulsión de moldes gomosos y ramificados, como ramitas. Satura 85%.",
}
HEADERS = {"Authorization": f"Bearer {LOADER_KEY}"}
SUBSET_CASES = 200
WHOLE = None  # every case of the sample


@dataclass(frozen=True)
class Loaded:
    """A service that started empty, loaded through its API, and what its store exported."""

    posted: PlatformData
    counts: dict[str, int]
    exported: PlatformData
    store: CaseStore
    client: TestClient
    database_url: str
    runtime: Runtime
    tracking_uri: str


@pytest.fixture(scope="module")
def sample_world() -> PlatformData:
    return SyntheticWorld(SAMPLE_WORLD_DIR, deidentify=RAW).read()


@pytest.fixture(scope="module")
def champion_tracking_uri(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> str:
    """An MLflow store holding a champion, trained once on the small world for every backend: the
    services below only load it, and their stores never see that world."""
    home = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CASEMATCH_HOME", str(home))
        env.setenv("CASEMATCH_DATABASE_URL", f"sqlite:///{home / 'unused.db'}")
        env.setenv("CASEMATCH_SYNTHETIC_DIR", str(small_world_dir.parent))
        env.setenv("HF_HUB_OFFLINE", "1")
        trained = CliRunner().invoke(cli, ["bootstrap", "--world", small_world_dir.name, "--corpora", ""])
        assert trained.exit_code == 0, trained.output
    return f"sqlite:///{home / 'mlflow.db'}"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("sqlite", SUBSET_CASES), id="sqlite"),
        pytest.param(("postgresql", SUBSET_CASES), id="postgresql"),
        pytest.param(("sqlite", WHOLE), id="sqlite-whole-sample", marks=pytest.mark.slow),
        pytest.param(("postgresql", WHOLE), id="postgresql-whole-sample", marks=pytest.mark.slow),
    ],
)
def loaded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sample_world: PlatformData,
    champion_tracking_uri: str,
) -> Iterator[Loaded]:
    backend, cases = request.param
    posted = _first_cases(sample_world, cases)
    home = tmp_path_factory.mktemp("home")
    with _database_url(backend, home) as url, pytest.MonkeyPatch.context() as env:
        env.setenv("HF_HUB_OFFLINE", "1")
        settings = Settings(
            home=home,
            database_url=url,
            mlflow_tracking_uri=champion_tracking_uri,
            seed_world="",  # an empty store: everything in it comes through the API
            api_keys=f"loader:{LOADER_KEY}:ingest+route",
        )
        runtime = Runtime.start(settings, watch=False)
        try:
            with TestClient(create_app(runtime)) as client:
                assert runtime.store.head_seq() == 0, "the store starts empty"
                counts = post_platform_data(client, posted, headers=HEADERS)
                exported = export_platform_data(runtime.store, url)
                yield Loaded(
                    posted, counts, exported, runtime.store, client, url, runtime, champion_tracking_uri
                )
        finally:
            runtime.close()


@contextmanager
def _database_url(backend: str, home: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{home / 'casematch.db'}"
        return
    with postgres_schema_url() as url:
        yield url


def _first_cases(world: PlatformData, n: int | None) -> PlatformData:
    """The first `n` cases by posting time (all: None), their answers and resolutions, every
    doctor, and verdicts on a few of them (the world has none): a deterministic slice."""
    cases = tuple(sorted(world.cases, key=lambda c: (c.created_at, c.case_id))[:n])
    kept = {c.case_id for c in cases}
    answers = tuple(a for a in world.answers if a.case_id in kept)
    resolutions = tuple(r for r in world.resolutions if r.case_id in kept)
    sliced = PlatformData(cases, answers, resolutions, world.doctors)
    return PlatformData(cases, answers, resolutions, world.doctors, feedback=_verdicts(sliced))


def _verdicts(data: PlatformData) -> tuple[FeedbackRecord, ...]:
    """On each of the last ten cases: a verdict on an earlier resolved case, given by a doctor who
    answered it an hour after both were posted, and that doctor's verdict on being suggested."""
    posted = {c.case_id: c.created_at for c in data.cases}
    resolved = sorted(data.resolutions, key=lambda r: (r.resolved_at, r.case_id))
    verdicts: list[FeedbackRecord] = []
    for i, case in enumerate(data.cases[-10:]):
        answerers = sorted(a.doctor_id for a in data.answers if a.case_id == case.case_id)
        by = answerers[0] if answerers else None
        similar = next(r.case_id for r in resolved[i:] if r.case_id != case.case_id)
        at = max(case.created_at, posted[similar]) + timedelta(hours=1)
        verdicts.append(FeedbackRecord(case.case_id, i % 2 == 0, at, similar_case_id=similar, by=by))
        if by is not None:
            verdicts.append(FeedbackRecord(case.case_id, i % 3 != 0, at + timedelta(minutes=5), doctor_id=by))
    return tuple(verdicts)


def test_every_record_was_posted_and_every_one_exported(loaded: Loaded) -> None:
    assert loaded.counts == loaded.posted.counts()
    assert loaded.exported.counts() == loaded.posted.counts()
    assert loaded.posted.counts()["feedback"] >= 10


def test_cases_come_back_by_posting_time_with_their_fields(loaded: Loaded) -> None:
    posted = sorted(loaded.posted.cases, key=lambda c: (c.created_at, c.case_id))
    exported = loaded.exported.cases
    assert [(c.case_id, c.created_at) for c in exported] == [(c.case_id, c.created_at) for c in posted]
    assert [(c.language, c.author_id, c.country, c.patient_age, c.patient_sex) for c in exported] == [
        (c.language, c.author_id, c.country, c.patient_age, c.patient_sex) for c in posted
    ]
    assert all(c.created_at.utcoffset() == timedelta(0) for c in exported)


def test_the_text_is_exported_as_stored_de_identified(loaded: Loaded) -> None:
    exported = {c.case_id: c for c in loaded.exported.cases}
    stored = loaded.store.get_cases(list(exported))
    assert all((c.title, c.text) == (stored[i].title, stored[i].text) for i, c in exported.items())
    planted = [p for p in read_table(SAMPLE_WORLD_DIR, "identifiers").to_pylist() if p["case_id"] in exported]
    assert len(planted) >= 50, "the slice holds posts with planted identifiers"
    left_whole = [p["kind"] for p in planted if p["text"] in exported[p["case_id"]].text]
    assert len(left_whole) / len(planted) <= 0.01, left_whole  # the floor of tests/integration/test_seed.py


def test_answers_come_back_with_their_acceptance_in_time_order(loaded: Loaded) -> None:
    def fields(a: AnswerRecord) -> tuple[str, str, datetime, bool]:
        return (a.case_id, a.doctor_id, a.created_at, a.accepted)

    exported = loaded.exported.answers
    assert sorted(map(fields, exported)) == sorted(map(fields, loaded.posted.answers))
    assert [(a.created_at, a.answer_id) for a in exported] == sorted(
        (a.created_at, a.answer_id) for a in exported
    )
    assert all(a.answer_id == f"{a.case_id}:{a.doctor_id}" for a in exported), "the service names answers"


def test_resolutions_come_back_with_their_specialties_and_times(loaded: Loaded) -> None:
    def fields(data: PlatformData) -> list[tuple[str, str, tuple[str, ...], datetime]]:
        return sorted((r.case_id, r.diagnosis, r.specialties, r.resolved_at) for r in data.resolutions)

    assert fields(loaded.exported) == fields(loaded.posted)
    times = [(r.resolved_at, r.case_id) for r in loaded.exported.resolutions]
    assert times == sorted(times)


def test_doctors_come_back_as_posted(loaded: Loaded) -> None:
    assert loaded.exported.doctors == tuple(sorted(loaded.posted.doctors, key=lambda d: d.doctor_id))


def test_feedback_posted_through_the_api_is_exported(loaded: Loaded) -> None:
    exported = loaded.exported.feedback
    assert sorted(exported, key=repr) == sorted(loaded.posted.feedback, key=repr)
    assert [f.created_at for f in exported] == sorted(f.created_at for f in exported)


def test_provenance_names_the_store_its_watermark_and_counts(loaded: Loaded) -> None:
    exported = loaded.exported
    provenance = exported.provenance
    assert exported.truth == {}
    assert provenance["source"] == "store"
    assert provenance["url"] == credential_free_url(loaded.database_url)
    # every case, resolution, doctor and answer (posted with its acceptance) took one seq of the
    # change feed that workers follow; feedback verdicts take none
    assert provenance["watermark"] == str(loaded.store.head_seq())
    assert int(provenance["watermark"]) == sum(
        len(records) for records in (exported.cases, exported.resolutions, exported.doctors, exported.answers)
    )
    assert {kind: int(provenance[kind]) for kind in exported.counts()} == exported.counts()
    assert len(provenance["data_hash"]) == 16


def test_an_export_never_carries_database_credentials(loaded: Loaded) -> None:
    url = "postgresql+psycopg://casematch:s3cr3t-pw@db.internal:5432/casematch?sslmode=require"
    again = export_platform_data(loaded.store, url)
    assert again.provenance["url"] == "postgresql+psycopg://db.internal:5432/casematch?sslmode=require"
    assert "s3cr3t" not in repr(again.provenance)
    assert again.provenance["data_hash"] == loaded.exported.provenance["data_hash"], "same rows, same hash"


def test_a_refused_record_stops_the_load_and_is_named(loaded: Loaded) -> None:
    stray = AnswerRecord("stray-a1", "no-such-case", "d00001", datetime(2025, 3, 1, tzinfo=UTC))
    with pytest.raises(
        PostError, match=r"answer 'stray-a1': POST /v1/cases/no-such-case/answers answered 404"
    ):
        post_platform_data(loaded.client, PlatformData((), (stray,), (), ()), headers=HEADERS)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://alice:s3cret@db.internal:5432/casematch?sslmode=require",
            "postgresql+psycopg://db.internal:5432/casematch?sslmode=require",
        ),
        (
            "postgresql://alice@db/casematch?password=s3cret&sslpassword=s3cret&application_name=export",
            "postgresql://db/casematch?application_name=export",
        ),
        ("postgresql+psycopg://:p%40ss%3Aword@db/casematch", "postgresql+psycopg://db/casematch"),
        ("sqlite:////var/lib/casematch/casematch.db", "sqlite:////var/lib/casematch/casematch.db"),
    ],
)
def test_credential_free_urls_keep_the_place_and_drop_user_and_password(url: str, shown: str) -> None:
    assert credential_free_url(url) == shown


def test_a_model_retrained_from_the_store_serves_the_next_route(
    loaded: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform's own records, posted through the API, train the next champion: `casematch
    retrain` fits every model from the store, judges it beside the champion on the store's newest
    dev weeks, promotes it (a wide tolerance: this checks the path, the gates check quality), and
    the service's next route is answered by that version."""
    monkeypatch.setenv("CASEMATCH_HOME", str(tmp_path))
    monkeypatch.setenv("CASEMATCH_DATABASE_URL", loaded.database_url)
    monkeypatch.setenv("CASEMATCH_MLFLOW_TRACKING_URI", loaded.tracking_uri)
    before = loaded.runtime.watcher.version
    result = CliRunner().invoke(cli, ["retrain", "--corpora", "", "--tolerance", "1"])
    assert result.exit_code == 0, result.output
    assert "trained on store" in result.output and "promoted" in result.output
    version = champion_version()
    assert version is not None and version != before
    run = MlflowClient().get_run(MlflowClient().get_model_version(MODEL_NAME, str(version)).run_id)
    assert run.data.tags["source.source"] == "store"
    assert run.data.tags["source.watermark"] == str(loaded.store.head_seq())
    assert run.data.tags["source.cases"] == str(len(loaded.posted.cases))
    assert "password" not in run.data.tags["source.url"]
    assert float(run.data.tags["size.train.store"]) > 0
    notes = [value for key, value in run.data.tags.items() if key.startswith("note.")]
    assert "urgency: no labels in the store data; the previous model's urgency carries over" in notes
    loaded.runtime.watcher.check()
    routed = loaded.client.post("/v1/route", json={"case": FONTAN}, headers=HEADERS)
    assert routed.status_code == 200, routed.text
    assert routed.json()["model"]["version"] == version
