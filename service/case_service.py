"""The one write path: every write commits to the store (the acknowledgement), then catches this
worker up with the store's change feed, so its index and routing state hold the write before the
response leaves (every other worker's follower picks it up within a poll). Route handlers call
it and nothing else.

Errors are domain errors (`service.store.errors`, `service.domain_errors`); `service/errors.py`
turns each into its HTTP answer once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from service.domain_errors import InvalidFieldError
from service.intake import case_language, deidentified
from service.runtime import Runtime
from service.schemas import AnswerIn, DoctorIn, FeedbackIn, ResolutionIn, StoredCaseIn
from service.store import records
from service.store.errors import UnknownCaseError, UnknownDoctorError
from service.store.records import Feedback, Outcome, StoredCase


class CaseService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def get(self, case_id: str) -> StoredCase:
        """The stored case; `UnknownCaseError` if there is none (or it was erased)."""
        return self.rt.store.get_case(case_id)

    def put_case(self, case_id: str, body: StoredCaseIn, *, upsert: bool) -> StoredCase:
        """Store a de-identified case: idempotent for identical content; `CaseConflictError` for
        other content under the same id unless `upsert`."""
        language = case_language(body)
        title, text = deidentified(self.rt.deid, body, language)
        case = records.NewCase(
            case_id=case_id,
            title=title,
            text=text,
            language=language,
            country=body.country or "",
            author_id=body.author_id or "",
            patient_age=body.patient_age,
            patient_sex=body.patient_sex,
            created_at=body.created_at,
        )
        self.rt.store.put_case(case, upsert=upsert)
        self.rt.follower.catch_up()
        return self.get(case_id)

    def delete_case(self, case_id: str) -> None:
        """Erase a case with its answers, resolution and feedback from the store, the index, the
        embedding cache and every later result."""
        stored = self.get(case_id)
        self.rt.store.delete_case(case_id)
        self.rt.forget_embedding(stored.title, stored.text)
        self.rt.follower.catch_up()

    def add_answer(self, case_id: str, body: AnswerIn) -> tuple[str, Outcome]:
        """Record a doctor's answer (one per doctor and case); returns its id and what the write did."""
        stored = self.get(case_id)
        answered_at = body.created_at or datetime.now(UTC)
        _not_before(answered_at, stored, detail="an answer cannot come before its case")
        answer_id = f"{case_id}:{body.doctor_id}"
        outcome = self.rt.store.add_answer(
            records.Answer(answer_id, case_id, body.doctor_id, answered_at, body.accepted)
        )
        self.rt.follower.catch_up()
        return answer_id, outcome

    def resolve_case(self, case_id: str, body: ResolutionIn) -> StoredCase:
        """Mark a case resolved: it becomes a similar-case candidate at once."""
        resolved_at = body.created_at or datetime.now(UTC)
        _not_before(resolved_at, self.get(case_id), detail="a resolution cannot come before its case")
        self.rt.store.resolve_case(
            case_id, records.Resolution(body.diagnosis, tuple(body.specialties), resolved_at, body.summary)
        )
        self.rt.follower.catch_up()
        return self.get(case_id)

    def add_feedback(self, case_id: str, body: FeedbackIn) -> Feedback:
        """Record whether a similar case or a suggested doctor was useful for a case."""
        stored = self.get(case_id)
        given_at = body.created_at or datetime.now(UTC)
        if body.similar_case_id == case_id:
            raise InvalidFieldError(
                "similar_case_id", f"{case_id!r} is the case itself, never its own similar case"
            )
        _not_before(given_at, stored, detail="feedback cannot come before its case")
        if body.similar_case_id is not None:
            similar = self.rt.store.get_cases([body.similar_case_id]).get(body.similar_case_id)
            if similar is None:
                raise InvalidFieldError("similar_case_id", f"no case {body.similar_case_id!r}")
            _not_before(given_at, similar, detail="feedback cannot come before the similar case it names")
        feedback = Feedback(
            uuid.uuid4().hex,
            case_id,
            body.useful,
            given_at,
            similar_case_id=body.similar_case_id,
            doctor_id=body.doctor_id,
            by=body.by,
        )
        try:
            return self.rt.store.add_feedback(feedback)
        except UnknownCaseError as error:  # erased since the checks above
            if error.case_id == case_id:
                raise
            raise InvalidFieldError("similar_case_id", f"no case {error.case_id!r}") from None
        except UnknownDoctorError as error:
            raise InvalidFieldError("doctor_id", f"no doctor {error.doctor_id!r}") from None

    def put_doctor(self, doctor_id: str, body: DoctorIn) -> Outcome:
        """Create or replace a doctor's profile and availability."""
        doctor = records.Doctor(
            doctor_id,
            tuple(body.specialties),
            tuple(body.languages),
            body.country or "",
            body.timezone,
            interests=tuple(body.interests),
            available=body.available,
            max_open_cases=body.max_open_cases,
        )
        outcome = self.rt.store.put_doctor(doctor)
        self.rt.follower.catch_up()
        return outcome

    def record_routing(self, decision: records.RoutingDecision) -> None:
        self.rt.store.record_routing(decision)


def _not_before(at: datetime, case: StoredCase, *, detail: str) -> None:
    """Refuse an event dated before `case` was posted: training splits and activity windows are
    cut by these times."""
    if at < case.created_at:
        raise InvalidFieldError(
            "created_at",
            f"{at.isoformat()} is before case {case.case_id!r} was posted ({case.created_at.isoformat()})",
            detail=detail,
        )
