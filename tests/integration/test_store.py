"""The case store against real databases: a SQLite file and PostgreSQL (skipped if it does not answer).

PostgreSQL runs each test in a fresh schema (via `search_path`), dropped afterwards, so reruns
start clean. Set `CASEMATCH_TEST_POSTGRES_URL` to point at another server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from service.store import (
    Answer,
    AnswerConflictError,
    CaseConflictError,
    CaseStore,
    ChangeBatch,
    Doctor,
    NewCase,
    Outcome,
    RankedSpecialty,
    Resolution,
    RoutingConflictError,
    RoutingDecision,
    StoreUnavailableError,
    UnknownCaseError,
    UnknownDoctorError,
    create_store_engine,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from service.store.database import normalise_url, writer
from service.store.models import Base, ChangeCounter

T0 = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
TABLES = {
    "feedback",
    "cases",
    "resolutions",
    "answers",
    "doctors",
    "erasures",
    "routing_decisions",
    "change_counter",
}


@pytest.fixture
def store(database_url: str) -> Iterator[CaseStore]:
    upgrade_to_head(database_url)
    case_store = CaseStore.from_url(database_url)
    yield case_store
    case_store.close()


def _case(case_id: str, *, text: str = "fiebre y tos de 3 días", created_at: datetime | None = T0) -> NewCase:
    return NewCase(case_id, f"case {case_id}", text, "es", "MX", "d-author", 7.5, "F", created_at)


def _resolution(diagnosis: str = "Bronquitis plástica") -> Resolution:
    return Resolution(
        diagnosis=diagnosis,
        specialties=("pediatric_pulmonology", "pediatric_cardiology"),
        resolved_at=T0 + timedelta(days=2),
        summary="moldes bronquiales tras Fontan",
    )


# --- migrations -----------------------------------------------------------------------------------


def test_migrations_reach_head_twice_and_match_the_models(database_url: str) -> None:
    assert current_revision(database_url) is None
    assert upgrade_to_head(database_url) == head_revision()
    assert upgrade_to_head(database_url) == head_revision()  # a no-op the second time
    assert current_revision(database_url) == head_revision()

    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == TABLES | {"alembic_version"}
            assert connection.execute(text("SELECT id, value FROM change_counter")).all() == [(1, 0)]
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []  # the migration builds the models
    finally:
        engine.dispose()


def test_concurrent_migrations_take_turns(database_url: str) -> None:
    revisions: list[str] = []
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            revisions.append(upgrade_to_head(database_url))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert revisions == [head_revision()] * 3


# --- cases ----------------------------------------------------------------------------------------


def test_put_case_creates_then_is_idempotent(store: CaseStore) -> None:
    assert store.put_case(_case("c1")) is Outcome.CREATED
    first = store.get_case("c1")
    assert store.put_case(_case("c1")) is Outcome.UNCHANGED
    # a retry without the posting time is the same case too: the time is not content
    assert store.put_case(_case("c1", created_at=None)) is Outcome.UNCHANGED
    assert store.get_case("c1") == first
    assert first.seq == store.head_seq() == 1
    assert (first.text, first.patient_age, first.patient_sex, first.resolution) == (
        "fiebre y tos de 3 días",
        7.5,
        "F",
        None,
    )


def test_create_with_other_content_conflicts_and_changes_nothing(store: CaseStore) -> None:
    store.put_case(_case("c1"))
    before = store.get_case("c1")
    with pytest.raises(CaseConflictError, match="'c1'"):
        store.put_case(_case("c1", text="otro texto"))
    assert store.get_case("c1") == before
    assert store.head_seq() == before.seq


def test_upsert_updates_content_with_a_new_seq_and_keeps_created_at(store: CaseStore) -> None:
    store.put_case(_case("c1"))
    store.put_case(_case("c2"))
    before = store.get_case("c1")
    assert store.put_case(
        _case("c1", text="fiebre, tos y estridor", created_at=T0 + timedelta(hours=1)), upsert=True
    ) is (Outcome.UPDATED)
    after = store.get_case("c1")
    assert after.text == "fiebre, tos y estridor"
    assert after.seq == 3 > before.seq
    assert after.created_at == before.created_at == T0
    assert after.updated_at >= before.updated_at
    assert after.content_hash != before.content_hash
    assert store.put_case(_case("c1", text="fiebre, tos y estridor"), upsert=True) is Outcome.UNCHANGED
    assert store.get_case("c1").seq == 3


def test_unknown_case_raises(store: CaseStore) -> None:
    with pytest.raises(UnknownCaseError, match="'nope'"):
        store.get_case("nope")
    with pytest.raises(UnknownCaseError):
        store.resolve_case("nope", _resolution())
    with pytest.raises(UnknownCaseError):
        store.add_answer(Answer("a1", "nope", "d1", T0))


def test_get_cases_reads_many_in_one_go_and_skips_erased_ones(store: CaseStore) -> None:
    for case_id in ("c1", "c2", "c3"):
        store.put_case(_case(case_id))
    store.resolve_case("c2", Resolution("neumonía", ("pulmonology",), T0))
    store.delete_case("c3")
    found = store.get_cases(["c1", "c2", "c3", "never"])
    assert sorted(found) == ["c1", "c2"]
    assert found["c2"].resolution is not None and found["c1"].resolution is None
    assert store.get_cases([]) == {}


def test_timestamps_come_back_aware_utc_and_naive_ones_are_refused(store: CaseStore) -> None:
    madrid = datetime(2025, 7, 1, 10, 0, 0, 654321, tzinfo=ZoneInfo("Europe/Madrid"))
    store.put_case(_case("c1", created_at=madrid))
    store.resolve_case("c1", Resolution("dx", ("nephrology",), resolved_at=madrid + timedelta(hours=5)))
    store.add_answer(Answer("a1", "c1", "d1", created_at=madrid + timedelta(hours=1)))
    case = store.get_case("c1")
    assert case.resolution is not None
    answer = next(iter(store.all_answers()))
    stamps = [case.created_at, case.updated_at, case.resolution.resolved_at, answer.answer.created_at]
    stamps.append(answer.case_posted_at)
    for stamp in stamps:
        assert stamp.tzinfo is UTC
    assert case.created_at == madrid and case.created_at.hour == 8  # same instant, microseconds kept
    assert case.created_at.microsecond == 654321

    with pytest.raises(ValueError, match="timezone-aware"):
        store.put_case(_case("c2", created_at=datetime(2025, 7, 1, 10, 0)))
    with pytest.raises(UnknownCaseError):
        store.get_case("c2")


def test_json_lists_round_trip(store: CaseStore) -> None:
    doctor = Doctor(
        doctor_id="d1",
        specialties=("pediatric_pulmonology", "pediatrics"),
        languages=("es", "en"),
        country="ES",
        timezone="Europe/Madrid",
        interests=("pediatric_cardiology",),
        available=False,
        max_open_cases=3,
    )
    assert store.put_doctor(doctor) is Outcome.CREATED
    assert store.get_doctor("d1") == doctor
    store.put_case(_case("c1"))
    store.resolve_case("c1", _resolution("Síndrome urémico hemolítico"))
    resolution = store.get_case("c1").resolution
    assert resolution == _resolution("Síndrome urémico hemolítico")
    decision = RoutingDecision(
        request_id="r1",
        model_version="case-router/7",
        specialties=(RankedSpecialty("nephrology", 0.625), RankedSpecialty("pediatrics", 0.1)),
        doctor_ids=("d1", "d9", "d3"),
        case_id="c1",
        created_at=T0,
    )
    assert store.record_routing(decision) is Outcome.CREATED
    assert store.get_routing("r1") == decision


# --- deletion -------------------------------------------------------------------------------------


def test_delete_cascades_and_leaves_only_an_erasure(store: CaseStore, database_url: str) -> None:
    store.put_case(_case("c1"))
    store.put_case(_case("c2"))
    store.add_answer(Answer("a1", "c1", "d1", T0 + timedelta(hours=1)))
    store.add_answer(Answer("a2", "c2", "d1", T0 + timedelta(hours=2)))
    store.resolve_case("c1", _resolution())
    store.record_routing(
        RoutingDecision("r1", "v1", (RankedSpecialty("pediatrics", 0.9),), ("d1",), case_id="c1")
    )
    head = store.head_seq()

    assert store.delete_case("c1") is True
    with pytest.raises(UnknownCaseError):
        store.get_case("c1")
    assert store.answers_for_case("c1") == []
    assert [a.answer.answer_id for a in store.all_answers()] == ["a2"]  # other cases untouched
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            count = "SELECT count(*) FROM {} WHERE case_id = 'c1'"
            for table in ("answers", "resolutions", "routing_decisions"):
                assert connection.execute(text(count.format(table))).scalar_one() == 0, table
            erasures = connection.execute(text("SELECT * FROM erasures")).mappings().all()
    finally:
        engine.dispose()
    assert [(e["case_id"], e["seq"]) for e in erasures] == [("c1", head + 1)]
    assert set(erasures[0].keys()) == {"seq", "case_id", "erased_at"}  # ids only, never content

    assert store.delete_case("c1") is False  # already gone: nothing to erase, no new seq
    assert store.delete_case("never-posted") is False
    assert store.head_seq() == head + 1


# --- change feed ----------------------------------------------------------------------------------


def test_changes_since_returns_creates_updates_resolutions_and_erasures_in_order(store: CaseStore) -> None:
    store.put_case(_case("a"))  # 1
    store.put_case(_case("b"))  # 2
    store.resolve_case("a", _resolution())  # 3: a again, now resolved
    store.put_case(_case("b", text="texto nuevo"), upsert=True)  # 4
    store.delete_case("a")  # 5: erasure
    store.put_case(_case("c"))  # 6
    store.put_case(_case("a", text="publicado de nuevo"))  # 7: same id posted again

    everything = store.changes_since(0)
    assert [(c.case_id, c.seq) for c in everything.cases] == [("b", 4), ("c", 6), ("a", 7)]
    assert [(e.case_id, e.seq) for e in everything.erasures] == [("a", 5)]
    assert (everything.watermark, everything.complete) == (7, True)
    assert everything.cases[0].text == "texto nuevo"

    assert [c.case_id for c in store.changes_since(2).cases] == ["b", "c", "a"]
    later = store.changes_since(5)
    assert ([c.case_id for c in later.cases], later.erasures) == (["c", "a"], ())
    nothing = store.changes_since(7)
    assert (nothing.cases, nothing.erasures, nothing.watermark, nothing.complete) == ((), (), 7, True)

    store.put_case(_case("d"))
    store.resolve_case("d", _resolution("Neumonía"))
    resolved = store.changes_since(7)
    assert [(c.case_id, c.seq, c.resolved) for c in resolved.cases] == [("d", 9, True)]
    assert resolved.cases[0].resolution == _resolution("Neumonía")


def test_changes_come_in_pages_up_to_a_correct_watermark(store: CaseStore) -> None:
    live: dict[str, int] = {}  # what the store should hold: case id -> seq of its last change
    erased: dict[int, str] = {}  # seq -> erased case id
    for i in range(23):
        store.put_case(_case(f"c{i:02d}"))
        live[f"c{i:02d}"] = store.head_seq()
        if i % 5 == 4:  # erasures interleave with creates in the seq order
            victim = f"c{i - 2:02d}"
            assert store.delete_case(victim)
            erased[store.head_seq()] = victim
            del live[victim]
    expected = sorted(
        [(seq, "case", cid) for cid, seq in live.items()] + [(s, "erasure", c) for s, c in erased.items()]
    )
    assert store.head_seq() == 27 and len(expected) == 27 - len(erased)  # erased cases' own seqs are gone

    first = store.changes_since(0, limit=10)
    assert _changes(first) == expected[:10]
    assert (first.watermark, first.complete) == (expected[9][0], False)

    batches = list(store.iter_changes(0, page_size=4))
    assert all(len(b.cases) + len(b.erasures) <= 4 for b in batches)
    assert [b.complete for b in batches] == [False] * (len(batches) - 1) + [True]
    assert [change for b in batches for change in _changes(b)] == expected
    assert [b.watermark for b in batches][-1] == store.head_seq()
    assert _changes(store.changes_since(expected[5][0], limit=3)) == expected[6:9]


def _changes(batch: ChangeBatch) -> list[tuple[int, str, str]]:
    cases = [(c.seq, "case", c.case_id) for c in batch.cases]
    return sorted(cases + [(e.seq, "erasure", e.case_id) for e in batch.erasures])


# --- answers, doctors, routing --------------------------------------------------------------------


def test_answers_are_idempotent_and_stream_in_time_order(store: CaseStore) -> None:
    store.put_case(_case("c1"))
    store.put_case(_case("c2", created_at=T0 + timedelta(days=1)))
    head = store.head_seq()
    answers = [
        Answer("a3", "c2", "d2", T0 + timedelta(days=1, hours=3)),
        Answer("a1", "c1", "d1", T0 + timedelta(hours=1)),
        Answer("a2b", "c1", "d2", T0 + timedelta(hours=2)),
        Answer("a2a", "c1", "d3", T0 + timedelta(hours=2)),  # same time: ordered by id
    ]
    for answer in answers:
        assert store.add_answer(answer) is Outcome.CREATED
    assert store.add_answer(answers[1]) is Outcome.UNCHANGED
    accepted = Answer("a1", "c1", "d1", T0 + timedelta(hours=1), accepted=True)
    assert store.add_answer(accepted) is Outcome.UPDATED
    with pytest.raises(AnswerConflictError):
        store.add_answer(Answer("a1", "c2", "d1", T0 + timedelta(hours=1)))
    # Each new answer and the acceptance took a seq (the unchanged and the refused write did not),
    # and the change feed hands every answer to the followers once, as it is now, by its last seq.
    assert store.head_seq() == head + 5
    feed = store.changes_since(head)
    assert [(a.answer.answer_id, a.answer.accepted, a.seq) for a in feed.answers] == [
        ("a3", False, head + 1),
        ("a2b", False, head + 3),
        ("a2a", False, head + 4),
        ("a1", True, head + 5),
    ]
    assert feed.cases == () and feed.watermark == head + 5 and feed.complete
    assert store.changes_since(head, activity=False).answers == ()
    # A follower rebuilt up to a seq replays the answers up to it; the feed brings the rest.
    assert [a.answer.answer_id for a in store.all_answers(up_to_seq=head + 3)] == ["a2b", "a3"]

    streamed = list(store.all_answers(page_size=2))  # several keyset pages
    assert [a.answer.answer_id for a in streamed] == ["a1", "a2a", "a2b", "a3"]
    assert streamed[0].answer == accepted
    assert [a.case_posted_at for a in streamed] == [T0, T0, T0, T0 + timedelta(days=1)]
    since = store.answers_since(T0 + timedelta(hours=1), page_size=1)
    assert [a.answer.answer_id for a in since] == ["a2a", "a2b", "a3"]


def test_resolving_again_with_the_same_resolution_is_unchanged(store: CaseStore) -> None:
    store.put_case(_case("c1"))
    assert store.resolve_case("c1", _resolution()) is Outcome.CREATED
    seq = store.get_case("c1").seq
    assert store.resolve_case("c1", _resolution()) is Outcome.UNCHANGED
    assert store.get_case("c1").seq == seq
    assert store.resolve_case("c1", _resolution("Otra cosa")) is Outcome.UPDATED
    assert store.get_case("c1").seq == seq + 1


def test_doctors_upsert_and_list(store: CaseStore) -> None:
    on_call = Doctor("d2", ("nephrology",), ("en",), "US", "America/Chicago")
    away = Doctor("d1", ("pediatrics",), ("es",), "MX", "America/Mexico_City", available=False)
    assert [store.put_doctor(d) for d in (on_call, away)] == [Outcome.CREATED, Outcome.CREATED]
    assert store.put_doctor(on_call) is Outcome.UNCHANGED
    back = Doctor("d1", ("pediatrics",), ("es", "en"), "MX", "America/Mexico_City", max_open_cases=4)
    assert store.put_doctor(back) is Outcome.UPDATED
    assert store.list_doctors() == [back, on_call]
    assert (
        store.put_doctor(Doctor("d3", (), ("en",), "GB", "Europe/London", available=False)) is Outcome.CREATED
    )
    assert [d.doctor_id for d in store.list_doctors(available_only=True)] == ["d1", "d2"]
    with pytest.raises(UnknownDoctorError):
        store.get_doctor("d404")


def test_routing_decisions_are_idempotent_per_request(store: CaseStore) -> None:
    decision = RoutingDecision("r1", "v1", (RankedSpecialty("cardiology", 0.7),), ("d1", "d2"))
    assert store.record_routing(decision) is Outcome.CREATED  # no case: routed before posting
    stored = store.get_routing("r1")
    assert stored.case_id is None and stored.created_at is not None and stored.created_at.tzinfo is UTC
    assert store.record_routing(decision) is Outcome.UNCHANGED
    with pytest.raises(RoutingConflictError):
        store.record_routing(RoutingDecision("r1", "v1", (RankedSpecialty("cardiology", 0.7),), ("d2", "d1")))


# --- concurrency ----------------------------------------------------------------------------------


def _run_all(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as error:
                errors.append(error)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_concurrent_writers_get_unique_increasing_seqs_and_a_reader_misses_nothing(store: CaseStore) -> None:
    writers, rounds, cases_each = 4, 12, 8
    seqs: dict[int, list[int]] = {}
    last_text: dict[str, str] = {}
    replica: dict[str, int] = {}  # case id -> seq, as an index replica catching up would see it
    watermarks: list[int] = []
    writing_done = threading.Event()

    def write(w: int) -> Callable[[], None]:
        def run() -> None:
            mine: list[int] = []
            for i in range(rounds):  # the first `cases_each` rounds create, the rest update
                case_id, body = f"w{w}-{i % cases_each}", f"writer {w} round {i}"
                assert store.put_case(_case(case_id, text=body), upsert=True) is not Outcome.UNCHANGED
                last_text[case_id] = body
                mine.append(store.get_case(case_id).seq)
            store.resolve_case(f"w{w}-0", _resolution())
            mine.append(store.get_case(f"w{w}-0").seq)
            assert store.delete_case(f"w{w}-1")
            del last_text[f"w{w}-1"]
            seqs[w] = mine

        return run

    def read() -> None:
        watermark = 0
        while True:
            finished = writing_done.is_set()  # read once more after the writers are done
            for batch in store.iter_changes(watermark, page_size=5):
                for erasure in batch.erasures:
                    replica.pop(erasure.case_id, None)
                for case in batch.cases:
                    replica[case.case_id] = case.seq
                watermark = batch.watermark
                watermarks.append(watermark)
            if finished:
                return
            time.sleep(0.002)

    reader = threading.Thread(target=read)
    reader.start()
    errors = _run_all([write(w) for w in range(writers)])
    writing_done.set()
    reader.join(timeout=60)
    assert errors == []

    for mine in seqs.values():
        assert mine == sorted(mine) and len(set(mine)) == len(mine), mine  # increasing per writer
    every_seq = [s for mine in seqs.values() for s in mine]
    assert len(set(every_seq)) == len(every_seq)  # never handed out twice
    assert store.head_seq() == writers * (rounds + 2)  # no write lost, no seq skipped

    final = store.changes_since(0, limit=1000)
    assert {c.case_id: c.text for c in final.cases} == last_text
    assert sorted(e.case_id for e in final.erasures) == [f"w{w}-1" for w in range(writers)]
    assert watermarks == sorted(watermarks)
    assert replica == {c.case_id: c.seq for c in final.cases}  # the catching-up reader saw it all


def test_writers_queue_behind_an_open_change_while_readers_carry_on(store: CaseStore) -> None:
    store.put_case(_case("before"))
    done = threading.Event()

    def post() -> None:
        store.put_case(_case("queued"))
        done.set()

    with writer(store.engine).begin() as held:  # another writer, mid-transaction, holding the counter
        held.execute(select(ChangeCounter).with_for_update()).scalar_one()
        poster = threading.Thread(target=post)
        poster.start()
        assert not done.wait(0.3)  # waits its turn instead of failing...
        assert [c.case_id for c in store.changes_since(0).cases] == ["before"]  # ...readers do not wait
    poster.join(timeout=10)
    assert done.is_set()
    assert [(c.case_id, c.seq) for c in store.changes_since(0).cases] == [("before", 1), ("queued", 2)]


def test_concurrent_creates_of_one_id_create_it_once(store: CaseStore) -> None:
    outcomes: list[Outcome] = []

    def create() -> None:
        outcomes.append(store.put_case(_case("same")))

    assert _run_all([create] * 4) == []
    assert sorted(outcomes) == sorted([Outcome.CREATED] + [Outcome.UNCHANGED] * 3)
    assert store.head_seq() == 1


# --- configuration --------------------------------------------------------------------------------


def test_urls_get_a_driver_and_bad_ones_are_refused() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ValueError, match="SQLite file"):
        normalise_url("sqlite://")
    with pytest.raises(ValueError, match="mysql"):
        normalise_url("mysql://u@h/db")


def test_an_unreachable_database_raises_a_store_error() -> None:
    store = CaseStore.from_url("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
    try:
        with pytest.raises(StoreUnavailableError, match="unavailable"):
            store.put_case(_case("c1"))
    finally:
        store.close()
