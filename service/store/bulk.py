"""Load a whole world into an empty store in one transaction (first start, demos, benchmarks).

One row at a time, 20,000 cases and 110,000 answers would be 150,000 commits; here they are
batched inserts in a single transaction, taking change numbers 1..n in posting order, exactly as
if the cases had been posted one by one in their final state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.store.errors import StoreError
from service.store.models import AnswerRow, Base, CaseRow, DoctorRow, ResolutionRow
from service.store.records import Answer, Doctor, NewCase, Resolution, as_utc

BATCH = 2_000  # rows per INSERT statement


class StoreNotEmptyError(StoreError):
    """Bulk loading is only for a store that has never held a case."""


@dataclass(frozen=True, slots=True)
class WorldRecords:
    cases: Sequence[NewCase]  # in posting order; created_at required
    resolutions: dict[str, Resolution]  # case id -> resolution
    doctors: Sequence[Doctor]
    answers: Sequence[Answer]


def world_head(records: WorldRecords) -> int:
    """The head seq after loading `records`: cases, then doctors, then answers, one seq each."""
    return len(records.cases) + len(records.doctors) + len(records.answers)


def world_rows(records: WorldRecords, now: datetime) -> list[tuple[type[Base], list[dict[str, Any]]]]:
    """Rows per table, in insertion order (cases before what refers to them); case i gets seq i,
    then doctors and answers take the seqs after the cases (`world_head` is the last)."""
    case_rows = []
    for seq, case in enumerate(records.cases, start=1):
        if case.created_at is None:
            raise ValueError(f"case {case.case_id} has no created_at")
        case_rows.append(
            {
                "id": case.case_id,
                "title": case.title,
                "text": case.text,
                "language": case.language,
                "country": case.country,
                "author_id": case.author_id,
                "patient_age": case.patient_age,
                "patient_sex": case.patient_sex,
                "created_at": as_utc(case.created_at, what="created_at"),
                "updated_at": now,
                "content_hash": case.content_hash(),
                "seq": seq,
            }
        )
    resolution_rows = [
        {
            "case_id": case_id,
            "diagnosis": r.diagnosis,
            "summary": r.summary,
            "specialties": list(r.specialties),
            "resolved_at": as_utc(r.resolved_at, what="resolved_at"),
        }
        for case_id, r in records.resolutions.items()
    ]
    doctor_rows = [
        {
            "id": d.doctor_id,
            "specialties": list(d.specialties),
            "interests": list(d.interests),
            "languages": list(d.languages),
            "country": d.country,
            "timezone": d.timezone,
            "available": d.available,
            "max_open_cases": d.max_open_cases,
            "seq": seq,
        }
        for seq, d in enumerate(records.doctors, start=len(records.cases) + 1)
    ]
    answer_rows = [
        {
            "id": a.answer_id,
            "case_id": a.case_id,
            "doctor_id": a.doctor_id,
            "created_at": as_utc(a.created_at, what="created_at"),
            "accepted": a.accepted,
            "seq": seq,
        }
        for seq, a in enumerate(records.answers, start=len(records.cases) + len(records.doctors) + 1)
    ]
    return [
        (CaseRow, case_rows),
        (ResolutionRow, resolution_rows),
        (DoctorRow, doctor_rows),
        (AnswerRow, answer_rows),
    ]
