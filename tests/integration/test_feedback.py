"""Feedback in the case store, on a SQLite file and PostgreSQL: kept, exported in time order, erased
with the cases it is on or names. (The HTTP side is in test_api.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from service.store import (
    CaseStore,
    Doctor,
    NewCase,
    UnknownCaseError,
    UnknownDoctorError,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from service.store.migrate import alembic_config
from service.store.records import Feedback

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[CaseStore]:
    upgrade_to_head(database_url)
    case_store = CaseStore.from_url(database_url)
    for case_id in ("a", "b", "c"):
        case_store.put_case(NewCase(case_id, f"case {case_id}", "fiebre y tos", "es", "MX", "d-author"))
    case_store.put_doctor(Doctor("d1", ("pediatric_pulmonology",), ("es",), "MX", "America/Mexico_City"))
    yield case_store
    case_store.close()


def test_a_store_at_0001_is_upgraded_keeping_its_cases(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "0001")
    old = CaseStore.from_url(database_url)
    try:
        old.put_case(NewCase("before", "case before", "fiebre y tos", "es", "MX", "d-author"))
    finally:
        old.close()
    assert upgrade_to_head(database_url) == head_revision() == current_revision(database_url)
    store = CaseStore.from_url(database_url)
    try:
        assert store.get_case("before").title == "case before"
        store.put_doctor(Doctor("d1", ("cardiology",), ("en",), "US", "UTC"))
        store.add_feedback(Feedback("f1", "before", True, T0, doctor_id="d1"))
        assert [f.feedback_id for f in store.all_feedback()] == ["f1"]
    finally:
        store.close()


def test_feedback_is_exported_oldest_first_across_pages(store: CaseStore) -> None:
    given = [
        Feedback("f3", "a", True, T0 + timedelta(hours=1), similar_case_id="b", by="d1"),
        Feedback("f2", "a", False, T0, doctor_id="d1"),
        Feedback("f1", "b", True, T0, similar_case_id="c"),  # same time as f2: ordered by id
        Feedback("f4", "c", True, T0 - timedelta(days=1), doctor_id="d1"),
    ]
    for feedback in given:
        assert store.add_feedback(feedback) == feedback
    for page_size in (1, 3, 5000):
        assert [f.feedback_id for f in store.all_feedback(page_size=page_size)] == ["f4", "f1", "f2", "f3"]
    assert next(iter(store.all_feedback())) == given[3]


def test_feedback_in_another_zone_is_stored_in_utc(store: CaseStore) -> None:
    madrid = datetime(2026, 6, 1, 16, tzinfo=timezone(timedelta(hours=2)))
    assert store.add_feedback(Feedback("f1", "a", True, madrid, doctor_id="d1")).created_at.tzinfo is UTC
    assert next(iter(store.all_feedback())).created_at == datetime(2026, 6, 1, 14, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.add_feedback(Feedback("f2", "a", True, datetime(2026, 6, 1), doctor_id="d1"))


def test_unknown_cases_and_doctors_are_named_and_nothing_is_stored(store: CaseStore) -> None:
    with pytest.raises(UnknownCaseError) as on_missing:
        store.add_feedback(Feedback("f1", "nope", True, T0, doctor_id="d1"))
    assert on_missing.value.case_id == "nope"
    with pytest.raises(UnknownCaseError) as naming_missing:
        store.add_feedback(Feedback("f2", "a", True, T0, similar_case_id="gone"))
    assert naming_missing.value.case_id == "gone"
    with pytest.raises(UnknownDoctorError) as unknown_doctor:
        store.add_feedback(Feedback("f3", "a", True, T0, doctor_id="d-nope"))
    assert unknown_doctor.value.doctor_id == "d-nope"
    with pytest.raises(ValueError, match="exactly one"):
        Feedback("f4", "a", True, T0, similar_case_id="b", doctor_id="d1")
    assert list(store.all_feedback()) == []


def test_the_schema_holds_exactly_one_target(store: CaseStore) -> None:
    """Even a writer that bypasses the repository cannot store feedback on nothing or on both."""
    for similar, doctor in ((None, None), ("b", "d1")):
        with pytest.raises(IntegrityError), store.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO feedback (id, case_id, similar_case_id, doctor_id, useful, created_at) "
                    "VALUES ('x', 'a', :similar, :doctor, true, :at)"
                ),
                {"similar": similar, "doctor": doctor, "at": T0},
            )


def test_erasing_a_case_erases_the_feedback_on_it_and_naming_it(store: CaseStore) -> None:
    store.add_feedback(Feedback("on-b", "b", True, T0, doctor_id="d1"))
    store.add_feedback(Feedback("names-b", "a", True, T0, similar_case_id="b"))
    store.add_feedback(Feedback("b-names-c", "b", False, T0, similar_case_id="c"))
    store.add_feedback(Feedback("unrelated", "c", True, T0, similar_case_id="a"))
    assert store.delete_case("b")
    assert [f.feedback_id for f in store.all_feedback()] == ["unrelated"]
    with pytest.raises(UnknownCaseError):
        store.add_feedback(Feedback("late", "a", True, T0, similar_case_id="b"))
