"""What goes into and comes out of the case store: frozen records, never ORM rows.

Every datetime handed in must be timezone-aware; every datetime handed out is in UTC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Outcome(StrEnum):
    """What a write did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # same content as stored: nothing written, no new seq


def as_utc(value: datetime, *, what: str) -> datetime:
    """`value` in UTC; naive datetimes are refused (their zone would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class NewCase:
    """A case as the platform posts it; `text` is already de-identified by the caller."""

    case_id: str
    title: str = field(repr=False)  # case content stays out of reprs, hence out of logs
    text: str = field(repr=False)
    language: str
    country: str
    author_id: str
    patient_age: float | None = None  # years
    patient_sex: str | None = None
    created_at: datetime | None = None  # posting time; default: when first stored

    def content_hash(self) -> str:
        """SHA-256 of the canonical content: what routing and matching read, not the posting time,
        so a retried post without a timestamp is still recognised as the same case."""
        content = {
            "title": self.title,
            "text": self.text,
            "language": self.language,
            "country": self.country,
            "author_id": self.author_id,
            "patient_age": None if self.patient_age is None else float(self.patient_age),
            "patient_sex": self.patient_sex,
        }
        canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Resolution:
    diagnosis: str
    specialties: tuple[str, ...]  # taxonomy codes, most relevant first
    resolved_at: datetime
    summary: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class StoredCase:
    case_id: str
    title: str = field(repr=False)
    text: str = field(repr=False)
    language: str
    country: str
    author_id: str
    patient_age: float | None
    patient_sex: str | None
    created_at: datetime
    updated_at: datetime  # last content or resolution change
    content_hash: str
    seq: int  # change sequence number of the last change; the index watermark compares to it
    resolution: Resolution | None

    @property
    def resolved(self) -> bool:
        return self.resolution is not None


@dataclass(frozen=True, slots=True)
class Erasure:
    """A deleted case, by id only: lets index replicas drop it when catching up."""

    case_id: str
    erased_at: datetime
    seq: int


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """Changes with `since < seq <= watermark`, in seq order.

    Apply `erasures` before `cases`: a case id in both was deleted and then posted again, and the
    case row is always the newer of the two. `complete` is True when the batch reached the last
    change committed when it was read; otherwise ask again from `watermark`.
    """

    cases: tuple[StoredCase, ...]
    erasures: tuple[Erasure, ...]
    watermark: int
    complete: bool
    doctors: tuple[Doctor, ...] = ()  # profiles as they are now (availability included)
    answers: tuple[AnswerActivity, ...] = ()  # answers given, or accepted since


@dataclass(frozen=True, slots=True)
class Doctor:
    doctor_id: str
    specialties: tuple[str, ...]  # taxonomy codes
    languages: tuple[str, ...]
    country: str
    timezone: str  # IANA name, e.g. "America/Mexico_City"
    interests: tuple[str, ...] = ()  # specialty codes the doctor follows beyond their own
    available: bool = True
    max_open_cases: int | None = None  # None: no cap


@dataclass(frozen=True, slots=True)
class Answer:
    answer_id: str
    case_id: str
    doctor_id: str
    created_at: datetime
    accepted: bool = False


@dataclass(frozen=True, slots=True)
class AnswerActivity:
    """An answer with its case's posting time: what doctor-activity features are rebuilt from."""

    answer: Answer
    case_posted_at: datetime
    seq: int = 0  # its place in the change feed


@dataclass(frozen=True, slots=True)
class RankedSpecialty:
    code: str
    probability: float


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """What the service answered for one routing request; content-free (codes and ids only)."""

    request_id: str
    model_version: str
    specialties: tuple[RankedSpecialty, ...]
    doctor_ids: tuple[str, ...]  # ranked
    case_id: str | None = None
    created_at: datetime | None = None  # default: when recorded


@dataclass(frozen=True, slots=True)
class Feedback:
    """A doctor's verdict on one suggestion made for a case: a similar case or a doctor, exactly one.

    Ids and a boolean only, never case text.
    """

    feedback_id: str
    case_id: str  # the case the suggestion was made for
    useful: bool
    created_at: datetime
    similar_case_id: str | None = None
    doctor_id: str | None = None
    by: str | None = None  # the doctor giving the verdict, when the platform says who

    def __post_init__(self) -> None:
        if (self.similar_case_id is None) == (self.doctor_id is None):
            raise ValueError(
                f"feedback {self.feedback_id!r} needs exactly one of similar_case_id and doctor_id"
            )
