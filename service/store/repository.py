"""The case store's operations: cases, resolutions, answers, feedback, doctors, erasures, routing
decisions.

Every change an index replica must learn about (a case created or updated, resolved, deleted)
takes the next change sequence number (`seq`) from the single-row `change_counter`, locked for
the rest of the transaction. Writers therefore commit in seq order on both backends, and
`changes_since(watermark)` never skips a change that commits later with a lower seq.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Engine, Select, and_, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from service.store.bulk import BATCH, StoreNotEmptyError, WorldRecords, world_head, world_rows
from service.store.database import create_store_engine, writer
from service.store.errors import (
    AnswerConflictError,
    CaseConflictError,
    RoutingConflictError,
    StoreUnavailableError,
    UnknownCaseError,
    UnknownDoctorError,
    UnknownRoutingError,
)
from service.store.models import (
    AnswerRow,
    CaseRow,
    ChangeCounter,
    DoctorRow,
    ErasureRow,
    FeedbackRow,
    ResolutionRow,
    RoutingDecisionRow,
)
from service.store.records import (
    Answer,
    AnswerActivity,
    ChangeBatch,
    Doctor,
    Erasure,
    Feedback,
    NewCase,
    Outcome,
    RankedSpecialty,
    Resolution,
    RoutingDecision,
    StoredCase,
    as_utc,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Row = TypeVarTuple("_Row")  # the column types of a feed query


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CaseStore:
    """The source of truth of cases and what hangs off them. Thread-safe: one session per call.

    The schema must exist (`service.store.migrate.upgrade_to_head`).
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.engine = engine
        self._clock = clock
        self._read_sessions = sessionmaker(engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(writer(engine), expire_on_commit=False)

    @classmethod
    def from_url(cls, database_url: str, *, clock: Callable[[], datetime] = _utc_now) -> CaseStore:
        return cls(create_store_engine(database_url), clock=clock)

    def close(self) -> None:
        self.engine.dispose()

    # --- cases -----------------------------------------------------------------------------------

    def put_case(self, case: NewCase, *, upsert: bool = False) -> Outcome:
        """Store a case. The same content again is UNCHANGED (no new seq); other content under a
        known id raises `CaseConflictError` unless `upsert`, which updates it (keeping created_at)."""
        digest = case.content_hash()
        posted_at = as_utc(case.created_at, what="created_at") if case.created_at else None
        with self._writing() as session:
            counter = _lock_changes(session)
            row = session.get(CaseRow, case.case_id)
            if row is not None and row.content_hash == digest:
                return Outcome.UNCHANGED
            if row is not None and not upsert:
                raise CaseConflictError(case.case_id)
            now = self._now()
            if row is None:
                row = CaseRow(id=case.case_id, created_at=posted_at or now)
                session.add(row)
                outcome = Outcome.CREATED
            else:
                outcome = Outcome.UPDATED
            row.title = case.title
            row.text = case.text
            row.language = case.language
            row.country = case.country
            row.author_id = case.author_id
            row.patient_age = case.patient_age
            row.patient_sex = case.patient_sex
            row.content_hash = digest
            row.updated_at = now
            row.seq = _next_seq(counter)
            seq = row.seq
        logger.debug("case %s %s at seq %d", case.case_id, outcome, seq)
        return outcome

    def get_case(self, case_id: str) -> StoredCase:
        """The case with its resolution; `UnknownCaseError` if there is none."""
        query = (
            select(CaseRow, ResolutionRow)
            .outerjoin(ResolutionRow, ResolutionRow.case_id == CaseRow.id)
            .where(CaseRow.id == case_id)
        )
        with self._reading() as session:
            found = session.execute(query).one_or_none()
            if found is None:
                raise UnknownCaseError(case_id)
            return _stored_case(found[0], found[1])

    def get_cases(self, case_ids: Sequence[str]) -> dict[str, StoredCase]:
        """The stored ones among `case_ids`, with their resolutions, in one query (erased ids are absent)."""
        query = (
            select(CaseRow, ResolutionRow)
            .outerjoin(ResolutionRow, ResolutionRow.case_id == CaseRow.id)
            .where(CaseRow.id.in_(list(case_ids)))
        )
        with self._reading() as session:
            return {case.id: _stored_case(case, resolution) for case, resolution in session.execute(query)}

    def delete_case(self, case_id: str) -> bool:
        """Hard-delete a case, its answers, resolution, routing decisions and feedback (given on it
        or naming it as a similar case), and record an erasure (id only) with a new seq. True if it
        was deleted; False if there was no such case (never posted, or already deleted: nothing to
        erase, no erasure recorded)."""
        with self._writing() as session:
            counter = _lock_changes(session)
            if session.scalar(select(CaseRow.id).where(CaseRow.id == case_id)) is None:
                return False
            session.execute(delete(RoutingDecisionRow).where(RoutingDecisionRow.case_id == case_id))
            # answers, the resolution and feedback on or naming the case go with it: ON DELETE CASCADE
            session.execute(delete(CaseRow).where(CaseRow.id == case_id))
            seq = _next_seq(counter)
            session.add(ErasureRow(seq=seq, case_id=case_id, erased_at=self._now()))
        logger.info("case %s deleted, erasure at seq %d", case_id, seq)
        return True

    def resolve_case(self, case_id: str, resolution: Resolution) -> Outcome:
        """Set (or replace) a case's resolution. A change gives the case a new seq, so index
        replicas learn it is resolved; the same resolution again is UNCHANGED."""
        resolved_at = as_utc(resolution.resolved_at, what="resolved_at")
        with self._writing() as session:
            counter = _lock_changes(session)
            case = session.get(CaseRow, case_id)
            if case is None:
                raise UnknownCaseError(case_id)
            row = session.get(ResolutionRow, case_id)
            given = replace(resolution, specialties=tuple(resolution.specialties), resolved_at=resolved_at)
            if row is not None and _resolution(row) == given:
                return Outcome.UNCHANGED
            outcome = Outcome.CREATED if row is None else Outcome.UPDATED
            if row is None:
                row = ResolutionRow(case_id=case_id)
                session.add(row)
            row.diagnosis = resolution.diagnosis
            row.summary = resolution.summary
            row.specialties = list(resolution.specialties)
            row.resolved_at = resolved_at
            case.seq = _next_seq(counter)
            case.updated_at = self._now()
            seq = case.seq
        logger.debug("resolution of case %s %s at seq %d", case_id, outcome, seq)
        return outcome

    def load_world(self, records: WorldRecords, *, on_rows: Callable[[int], None] | None = None) -> int:
        """Bulk-load a whole world into a store that never held data, in one transaction (see
        `service.store.bulk`); return the new head seq (cases, doctors and answers take one each).
        `StoreNotEmptyError` otherwise."""
        with self._writing() as session:
            counter = _lock_changes(session)
            if counter.value != 0 or session.scalar(select(DoctorRow.id).limit(1)) is not None:
                raise StoreNotEmptyError("the store already holds data: bulk loading would mix two worlds")
            for table, rows in world_rows(records, self._now()):
                for start in range(0, len(rows), BATCH):
                    session.execute(insert(table), rows[start : start + BATCH])
                    if on_rows is not None:
                        on_rows(len(rows[start : start + BATCH]))
            counter.value = world_head(records)
            return counter.value

    # --- change feed for index catch-up ----------------------------------------------------------

    def head_seq(self) -> int:
        """The last seq handed out (0 on an empty store). An index whose watermark is above it
        was built from another (or a restored) store and must be rebuilt."""
        with self._reading() as session:
            return _head(session)

    def changes_since(self, since: int, *, limit: int = 1000, activity: bool = True) -> ChangeBatch:
        """Up to `limit` changes after `since`, in seq order: each changed case as it is now
        (with its resolution), each erasure and, with `activity`, each doctor profile and answer
        that changed. Ask again from `watermark` until `complete`. (`activity=False` skips doctors
        and answers: an index rebuilt before the routing state exists needs only cases.)"""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._reading() as session:
            # Read the head first: every seq up to it is committed (see the module docstring),
            # so the window (since, head] is complete; later commits wait for the next call.
            head = _head(session)
            window = (since, head, limit)
            changes: list[tuple[int, StoredCase | Erasure | Doctor | AnswerActivity]] = [
                (row.seq, _stored_case(row, resolution))
                for row, resolution in session.execute(
                    _feed(select(CaseRow, ResolutionRow), CaseRow.seq, *window).outerjoin(
                        ResolutionRow, ResolutionRow.case_id == CaseRow.id
                    )
                )
            ]
            changes += [
                (row.seq, _erasure(row))
                for row in session.scalars(_feed(select(ErasureRow), ErasureRow.seq, *window))
            ]
            if activity:
                changes += [
                    (row.seq, _doctor(row))
                    for row in session.scalars(_feed(select(DoctorRow), DoctorRow.seq, *window))
                ]
                changes += [
                    (row.seq, AnswerActivity(_answer(row), posted_at, seq=row.seq))
                    for row, posted_at in session.execute(
                        _feed(select(AnswerRow, CaseRow.created_at), AnswerRow.seq, *window).join(
                            CaseRow, CaseRow.id == AnswerRow.case_id
                        )
                    )
                ]
        changes.sort(key=lambda change: change[0])
        complete = len(changes) < limit
        # each list is sorted by seq: their merged first `limit` are the window's first `limit`
        changes = changes[:limit]
        watermark = max(since, head) if complete else changes[-1][0]
        return ChangeBatch(
            cases=tuple(c for _, c in changes if isinstance(c, StoredCase)),
            erasures=tuple(c for _, c in changes if isinstance(c, Erasure)),
            doctors=tuple(c for _, c in changes if isinstance(c, Doctor)),
            answers=tuple(c for _, c in changes if isinstance(c, AnswerActivity)),
            watermark=watermark,
            complete=complete or watermark >= head,
        )

    def iter_changes(self, since: int, *, page_size: int = 1000) -> Iterator[ChangeBatch]:
        """`changes_since` page after page (one short transaction each), up to the head."""
        while True:
            batch = self.changes_since(since, limit=page_size)
            yield batch
            if batch.complete:
                return
            since = batch.watermark

    # --- answers ---------------------------------------------------------------------------------

    def add_answer(self, answer: Answer) -> Outcome:
        """Store an answer. Again with the same fields: UNCHANGED; with only `accepted` changed:
        UPDATED; the id under another case, doctor or time: `AnswerConflictError`."""
        answered_at = as_utc(answer.created_at, what="created_at")
        return self._retrying_once(lambda: self._add_answer(replace(answer, created_at=answered_at)))

    def _add_answer(self, answer: Answer) -> Outcome:
        with self._writing() as session:
            counter = _lock_changes(session)  # first, as every writer: one lock order, no deadlock
            row = session.get(AnswerRow, answer.answer_id)
            if row is None:
                if session.scalar(select(CaseRow.id).where(CaseRow.id == answer.case_id)) is None:
                    raise UnknownCaseError(answer.case_id)
                session.add(
                    AnswerRow(
                        id=answer.answer_id,
                        case_id=answer.case_id,
                        doctor_id=answer.doctor_id,
                        created_at=answer.created_at,
                        accepted=answer.accepted,
                        seq=_next_seq(counter),
                    )
                )
                return Outcome.CREATED
            stored = _answer(row)
            if stored == answer:
                return Outcome.UNCHANGED
            if (stored.case_id, stored.doctor_id, stored.created_at) != (
                answer.case_id,
                answer.doctor_id,
                answer.created_at,
            ):
                raise AnswerConflictError(
                    answer.answer_id, case_id=answer.case_id, doctor_id=answer.doctor_id
                )
            row.accepted = answer.accepted
            row.seq = _next_seq(counter)
            return Outcome.UPDATED

    def answers_for_case(self, case_id: str) -> list[Answer]:
        query = (
            select(AnswerRow).where(AnswerRow.case_id == case_id).order_by(AnswerRow.created_at, AnswerRow.id)
        )
        with self._reading() as session:
            return [_answer(row) for row in session.scalars(query)]

    def answers_since(self, since: datetime, *, page_size: int = 5000) -> Iterator[AnswerActivity]:
        """Answers given after `since`, oldest first (what doctor-activity windows replay),
        streamed in pages. By answer time: an answer stored late with an old time is not 'new'."""
        return self._answer_pages(as_utc(since, what="since"), page_size)

    def all_answers(self, *, page_size: int = 5000, up_to_seq: int | None = None) -> Iterator[AnswerActivity]:
        """Every answer, oldest first, streamed in pages: to rebuild doctor activity from scratch.
        `up_to_seq` leaves out answers given or accepted after that change: a follower replays
        them from the feed."""
        return self._answer_pages(None, page_size, up_to_seq=up_to_seq)

    def _answer_pages(
        self, after: datetime | None, page_size: int, *, up_to_seq: int | None = None
    ) -> Iterator[AnswerActivity]:
        # rows as tuples, not ORM entities: a start-up may replay millions of answers
        query = (
            select(*AnswerRow.__table__.columns, CaseRow.created_at.label("case_posted_at"))
            .join(CaseRow, CaseRow.id == AnswerRow.case_id)
            .order_by(AnswerRow.created_at, AnswerRow.id)
            .limit(page_size)
        )
        if after is not None:
            query = query.where(AnswerRow.created_at > after)
        if up_to_seq is not None:
            query = query.where(AnswerRow.seq <= up_to_seq)
        cursor: Answer | None = None
        while True:
            page_query = query
            if cursor is not None:  # keyset paging: stable and cheap however deep the page
                page_query = query.where(
                    or_(
                        AnswerRow.created_at > cursor.created_at,
                        and_(AnswerRow.created_at == cursor.created_at, AnswerRow.id > cursor.answer_id),
                    )
                )
            with self._reading() as session:
                page = [
                    AnswerActivity(_answer(row), row.case_posted_at, seq=row.seq)
                    for row in session.execute(page_query)
                ]
            yield from page
            if len(page) < page_size:
                return
            cursor = page[-1].answer

    # --- feedback --------------------------------------------------------------------------------

    def add_feedback(self, feedback: Feedback) -> Feedback:
        """Store a verdict and return it as stored (in UTC). `UnknownCaseError` names the missing
        case (`case_id` or `similar_case_id`); `UnknownDoctorError` the missing doctor."""
        stored = replace(feedback, created_at=as_utc(feedback.created_at, what="created_at"))
        return self._retrying_once(lambda: self._add_feedback(stored))

    def _add_feedback(self, feedback: Feedback) -> Feedback:
        with self._writing() as session:
            # Checked in the transaction that inserts: a case erased meanwhile fails the foreign
            # key instead, and the retry reports it here.
            for case_id in (feedback.case_id, feedback.similar_case_id):
                if case_id is not None and session.get(CaseRow, case_id) is None:
                    raise UnknownCaseError(case_id)
            if feedback.doctor_id is not None and session.get(DoctorRow, feedback.doctor_id) is None:
                raise UnknownDoctorError(feedback.doctor_id)
            session.add(
                FeedbackRow(
                    id=feedback.feedback_id,
                    case_id=feedback.case_id,
                    similar_case_id=feedback.similar_case_id,
                    doctor_id=feedback.doctor_id,
                    useful=feedback.useful,
                    by=feedback.by,
                    created_at=feedback.created_at,
                )
            )
        return feedback

    def all_feedback(self, *, page_size: int = 5000) -> Iterator[Feedback]:
        """Every verdict, oldest first, streamed in pages: what training sets are assembled from."""
        query = select(FeedbackRow).order_by(FeedbackRow.created_at, FeedbackRow.id).limit(page_size)
        cursor: Feedback | None = None
        while True:
            page_query = query
            if cursor is not None:  # keyset paging, as for answers
                page_query = query.where(
                    or_(
                        FeedbackRow.created_at > cursor.created_at,
                        and_(
                            FeedbackRow.created_at == cursor.created_at, FeedbackRow.id > cursor.feedback_id
                        ),
                    )
                )
            with self._reading() as session:
                page = [_feedback(row) for row in session.scalars(page_query)]
            yield from page
            if len(page) < page_size:
                return
            cursor = page[-1]

    # --- doctors ---------------------------------------------------------------------------------

    def put_doctor(self, doctor: Doctor) -> Outcome:
        """Create or replace a doctor's profile."""
        return self._retrying_once(lambda: self._put_doctor(doctor))

    def _put_doctor(self, doctor: Doctor) -> Outcome:
        with self._writing() as session:
            counter = _lock_changes(session)  # first, as every writer: one lock order, no deadlock
            row = session.get(DoctorRow, doctor.doctor_id)
            if row is not None and _doctor(row) == doctor:
                return Outcome.UNCHANGED
            outcome = Outcome.CREATED if row is None else Outcome.UPDATED
            if row is None:
                row = DoctorRow(id=doctor.doctor_id)
                session.add(row)
            row.specialties = list(doctor.specialties)
            row.interests = list(doctor.interests)
            row.languages = list(doctor.languages)
            row.country = doctor.country
            row.timezone = doctor.timezone
            row.available = doctor.available
            row.max_open_cases = doctor.max_open_cases
            row.seq = _next_seq(counter)
            return outcome

    def get_doctor(self, doctor_id: str) -> Doctor:
        with self._reading() as session:
            row = session.get(DoctorRow, doctor_id)
            if row is None:
                raise UnknownDoctorError(doctor_id)
            return _doctor(row)

    def list_doctors(self, *, available_only: bool = False) -> list[Doctor]:
        """All doctors by id (a few thousand: one query)."""
        # rows as tuples, not ORM entities: a start-up lists every doctor (5x faster at 500,000)
        query = select(*DoctorRow.__table__.columns).order_by(DoctorRow.id)
        if available_only:
            query = query.where(DoctorRow.available.is_(True))
        with self._reading() as session:
            return [_doctor(row) for row in session.execute(query)]

    # --- routing decisions -----------------------------------------------------------------------

    def record_routing(self, decision: RoutingDecision) -> Outcome:
        """Keep what the service answered for a request. The same request again: UNCHANGED
        (whatever its time); other decisions under a known request id: `RoutingConflictError`."""
        created_at = as_utc(decision.created_at, what="created_at") if decision.created_at else None
        return self._retrying_once(lambda: self._record_routing(decision, created_at))

    def _record_routing(self, decision: RoutingDecision, created_at: datetime | None) -> Outcome:
        with self._writing() as session:
            row = session.get(RoutingDecisionRow, decision.request_id)
            if row is not None:
                if _same_decision(_routing(row), decision):
                    return Outcome.UNCHANGED
                raise RoutingConflictError(decision.request_id)
            session.add(
                RoutingDecisionRow(
                    request_id=decision.request_id,
                    case_id=decision.case_id,
                    model_version=decision.model_version,
                    specialties=[
                        {"code": s.code, "probability": s.probability} for s in decision.specialties
                    ],
                    doctor_ids=list(decision.doctor_ids),
                    created_at=created_at or self._now(),
                )
            )
            return Outcome.CREATED

    def get_routing(self, request_id: str) -> RoutingDecision:
        with self._reading() as session:
            row = session.get(RoutingDecisionRow, request_id)
            if row is None:
                raise UnknownRoutingError(request_id)
            return _routing(row)

    # --- transactions ----------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with _unavailable_as_store_error(), self._read_sessions.begin() as session:
            yield session

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        """A write transaction; on SQLite it holds the database's write lock from its first
        statement (BEGIN IMMEDIATE), so concurrent writers wait their turn."""
        with _unavailable_as_store_error(), self._write_sessions.begin() as session:
            yield session

    def _retrying_once(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except IntegrityError:
            # A concurrent writer inserted the same key first (or deleted the case): the second
            # attempt sees its row and answers UNCHANGED, a conflict or UnknownCaseError.
            return operation()

    def _now(self) -> datetime:
        return as_utc(self._clock(), what="the store's clock")


@contextmanager
def _unavailable_as_store_error() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        # The driver's message only (no statement, no parameters: they may hold case text).
        raise StoreUnavailableError(f"case store unavailable: {error.orig}") from None


def _feed(query: Select[*_Row], seq: Any, since: int, head: int, limit: int) -> Select[*_Row]:
    """`query` narrowed to the feed window (since, head], first `limit` by seq."""
    return query.where(seq > since, seq <= head).order_by(seq).limit(limit)


def _lock_changes(session: Session) -> ChangeCounter:
    """Lock the change counter until commit: seqs are handed out and committed in one order."""
    return session.execute(select(ChangeCounter).where(ChangeCounter.id == 1).with_for_update()).scalar_one()


def _next_seq(counter: ChangeCounter) -> int:
    counter.value += 1
    return counter.value


def _head(session: Session) -> int:
    return session.execute(select(ChangeCounter.value).where(ChangeCounter.id == 1)).scalar_one()


# --- rows to records ------------------------------------------------------------------------------


def _stored_case(row: CaseRow, resolution: ResolutionRow | None) -> StoredCase:
    return StoredCase(
        case_id=row.id,
        title=row.title,
        text=row.text,
        language=row.language,
        country=row.country,
        author_id=row.author_id,
        patient_age=row.patient_age,
        patient_sex=row.patient_sex,
        created_at=row.created_at,
        updated_at=row.updated_at,
        content_hash=row.content_hash,
        seq=row.seq,
        resolution=None if resolution is None else _resolution(resolution),
    )


def _resolution(row: ResolutionRow) -> Resolution:
    return Resolution(
        diagnosis=row.diagnosis,
        specialties=tuple(row.specialties),
        resolved_at=row.resolved_at,
        summary=row.summary,
    )


def _erasure(row: ErasureRow) -> Erasure:
    return Erasure(case_id=row.case_id, erased_at=row.erased_at, seq=row.seq)


def _answer(row: Any) -> Answer:  # an AnswerRow, or a Core row of its columns
    return Answer(
        answer_id=row.id,
        case_id=row.case_id,
        doctor_id=row.doctor_id,
        created_at=row.created_at,
        accepted=row.accepted,
    )


def _feedback(row: FeedbackRow) -> Feedback:
    return Feedback(
        feedback_id=row.id,
        case_id=row.case_id,
        useful=row.useful,
        created_at=row.created_at,
        similar_case_id=row.similar_case_id,
        doctor_id=row.doctor_id,
        by=row.by,
    )


def _doctor(row: Any) -> Doctor:  # a DoctorRow, or a Core row of its columns
    return Doctor(
        doctor_id=row.id,
        specialties=tuple(row.specialties),
        languages=tuple(row.languages),
        country=row.country,
        timezone=row.timezone,
        interests=tuple(row.interests),
        available=row.available,
        max_open_cases=row.max_open_cases,
    )


def _routing(row: RoutingDecisionRow) -> RoutingDecision:
    specialties: list[dict[str, Any]] = row.specialties
    return RoutingDecision(
        request_id=row.request_id,
        model_version=row.model_version,
        specialties=tuple(RankedSpecialty(str(s["code"]), float(s["probability"])) for s in specialties),
        doctor_ids=tuple(row.doctor_ids),
        case_id=row.case_id,
        created_at=row.created_at,
    )


def _same_decision(stored: RoutingDecision, given: RoutingDecision) -> bool:
    return (stored.case_id, stored.model_version, stored.specialties, stored.doctor_ids) == (
        given.case_id,
        given.model_version,
        tuple(given.specialties),
        tuple(given.doctor_ids),
    )
