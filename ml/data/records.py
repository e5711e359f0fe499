"""Frozen records of what the platform records, and one snapshot of them (`PlatformData`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A posted case; `title` and `text` are de-identified, as the store keeps them."""

    case_id: str
    title: str = field(repr=False)  # case content stays out of reprs, hence out of logs
    text: str = field(repr=False)
    language: str
    author_id: str
    created_at: datetime  # UTC
    country: str = ""
    patient_age: float | None = None
    patient_sex: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    answer_id: str
    case_id: str
    doctor_id: str
    created_at: datetime
    accepted: bool = False


@dataclass(frozen=True, slots=True)
class ResolutionRecord:
    case_id: str
    diagnosis: str = field(repr=False)
    specialties: tuple[str, ...]  # taxonomy codes, most relevant first: the specialty label
    resolved_at: datetime


@dataclass(frozen=True, slots=True)
class DoctorRecord:
    doctor_id: str
    specialties: tuple[str, ...]
    interests: tuple[str, ...]
    languages: tuple[str, ...]
    country: str
    timezone: str  # IANA name


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A doctor's verdict on one suggestion made for a case: a similar case or a doctor."""

    case_id: str
    useful: bool
    created_at: datetime
    similar_case_id: str | None = None
    doctor_id: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class CaseTruth:
    """What only a synthetic world knows about a case (the platform never records it)."""

    condition_id: str
    presentation_index: int  # which written presentation of the condition the post used
    urgency: str  # emergent | urgent | routine


@dataclass(frozen=True)
class PlatformData:
    """One snapshot of a platform's records, with where it came from.

    `truth` is empty for a store export; `provenance` names the source (kind, URL without
    credentials, change-feed watermark, data hash) and is logged with every run trained on it.
    """

    cases: tuple[CaseRecord, ...]
    answers: tuple[AnswerRecord, ...]
    resolutions: tuple[ResolutionRecord, ...]
    doctors: tuple[DoctorRecord, ...]
    feedback: tuple[FeedbackRecord, ...] = ()
    truth: Mapping[str, CaseTruth] = field(default_factory=dict)  # case id -> truth
    provenance: Mapping[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "cases": len(self.cases),
            "answers": len(self.answers),
            "resolutions": len(self.resolutions),
            "doctors": len(self.doctors),
            "feedback": len(self.feedback),
        }


class Source(Protocol):
    """Anything training can read platform records from."""

    def read(self) -> PlatformData: ...
