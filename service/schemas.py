"""The JSON the API speaks (/v1): request and response bodies, validated, with OpenAPI examples.

Validation happens here so a bad request is a 4xx naming its field, never a 500: text lengths,
languages, specialty codes, ids. Case text is accepted raw and de-identified before anything
stores or embeds it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    model_validator,
)

from ml.taxonomy import load_taxonomy


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL and no clinical text needs one: refuse it here, as a 422
    if "\x00" in text:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    return text


NoNul = AfterValidator(_no_nul)

Language = Literal["en", "es"]
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300), NoNul]
CaseBody = Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=20_000), NoNul]
Diagnosis = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=300), NoNul]
Summary = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5_000), NoNul]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


def _known_specialty(code: str) -> str:
    if code not in load_taxonomy():
        raise ValueError(f"unknown specialty code {code!r} (see GET /v1/specialties)")
    return code


SpecialtyCode = Annotated[str, AfterValidator(_known_specialty)]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("timestamps need a time zone (e.g. 2025-11-03T09:30:00Z)")
    return value.astimezone(UTC) if value is not None else None


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
_STRICT = ConfigDict(extra="forbid", frozen=True)

FONTAN_EXAMPLE: dict[str, JsonValue] = {
    "title": "Niño de 9 años con Fontan que expulsa moldes al toser",
    "text": "Operado de Fontan a los 4 años. Tos con expulsión de moldes gomosos y ramificados. Satura 85%.",
    "language": "es",
    "country": "ES",
    "patient_age": 9,
    "patient_sex": "M",
}


CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of ours a client's clock may run


def _not_in_the_future(value: datetime) -> datetime:
    # Training splits and activity windows are cut by these times: one from the future corrupts both.
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError(f"{value.isoformat()} is in the future (beyond {CLOCK_SKEW} of clock skew)")
    return value


PastTime = Annotated[AwareDatetime, AfterValidator(_not_in_the_future)]


class CaseIn(BaseModel):
    """A posted case, as the platform sends it (text may still hold identifiers)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [FONTAN_EXAMPLE]})

    title: Title
    text: CaseBody
    language: Language | None = Field(default=None, description="detected from the text when absent")
    country: CountryCode | None = None
    patient_age: float | None = Field(default=None, ge=0, le=120)
    patient_sex: Literal["F", "M", "X"] | None = None


class StoredCaseIn(CaseIn):
    author_id: Identifier | None = None
    created_at: PastTime | None = Field(default=None, description="default: when the service received it")


class NewCase(StoredCaseIn):
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [{"id": "case-1042", **FONTAN_EXAMPLE}]}
    )

    id: Identifier


class RouteIn(BaseModel):
    """Route a new case (`case`) or a stored one (`case_id`): exactly one of them."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [{"case": FONTAN_EXAMPLE, "limit_doctors": 5}, {"case_id": "case-1042"}]
        },
    )

    case: CaseIn | None = None
    case_id: Identifier | None = None
    limit_specialties: int = Field(default=3, ge=1, le=63)
    limit_doctors: int = Field(default=10, ge=0, le=50)
    limit_similar: int = Field(default=5, ge=0, le=50)

    @model_validator(mode="after")
    def _exactly_one(self) -> RouteIn:
        if (self.case is None) == (self.case_id is None):
            raise ValueError("send exactly one of `case` and `case_id`")
        return self


class AnswerIn(BaseModel):
    model_config = _STRICT

    doctor_id: Identifier
    created_at: PastTime | None = Field(
        default=None, description="default: when the service received it; never before the case's own"
    )
    accepted: bool = False


class ResolutionIn(BaseModel):
    model_config = _STRICT

    diagnosis: Diagnosis
    summary: Summary | None = None
    specialties: list[SpecialtyCode] = Field(default_factory=list, max_length=10)
    created_at: PastTime | None = Field(
        default=None,
        description="resolution time; default: when the service received it; never before the case's own",
    )


class FeedbackIn(BaseModel):
    """A doctor's verdict on one suggestion for a case: a similar case or a doctor, exactly one."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {"similar_case_id": "case-0917", "useful": True, "by": "d-4410"},
                {"doctor_id": "d-2208", "useful": False},
            ]
        },
    )

    similar_case_id: Identifier | None = None
    doctor_id: Identifier | None = None
    useful: bool
    by: Identifier | None = Field(default=None, description="the doctor giving the feedback")
    created_at: PastTime | None = Field(
        default=None, description="default: when the service received it; never before the case's own"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> FeedbackIn:
        if (self.similar_case_id is None) == (self.doctor_id is None):
            raise ValueError("send exactly one of `similar_case_id` and `doctor_id`")
        return self


class DoctorIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "specialties": ["pediatric_pulmonology"],
                    "languages": ["es", "en"],
                    "country": "ES",
                    "timezone": "Europe/Madrid",
                }
            ]
        },
    )

    specialties: list[SpecialtyCode] = Field(min_length=1, max_length=5)
    languages: list[Language] = Field(min_length=1, max_length=2)
    interests: list[SpecialtyCode] = Field(default_factory=list, max_length=10)
    country: CountryCode | None = None
    timezone: str = Field(default="UTC", description="IANA zone, e.g. America/Mexico_City")
    available: bool = True
    max_open_cases: int = Field(default=8, ge=1, le=100)

    @model_validator(mode="after")
    def _known_zone(self) -> DoctorIn:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        return self


# --- responses -------------------------------------------------------------------------------------


REDACTIONS = (
    "identifiers removed before storing or matching, kind -> count (e.g. NAME, DATE, PHONE); "
    "the removed text is never returned"
)


class SpecialtyOut(BaseModel):
    code: str
    name: str
    probability: float


class ReasonOut(BaseModel):
    code: str = Field(
        description="answered_similar, practises, follows, reads_language, needs_translation, "
        "answers_last_30_days or usually_answers_within"
    )
    params: dict[str, int | str | list[str]] = Field(
        description="what the code says: count, specialties (taxonomy codes), specialty, language, minutes"
    )


class DoctorOut(BaseModel):
    doctor_id: str
    score: float
    reasons: list[str] = Field(description="the reasons in English, strongest evidence first")
    reason_codes: list[ReasonOut] = Field(
        description="the same reasons as codes, for a page to render in its language"
    )


class SharedTermOut(BaseModel):
    term: str = Field(description="as written in the similar case")
    query_term: str = Field(description="as written in the routed case (same word, cognate or translation)")


class SimilarCaseOut(BaseModel):
    case_id: str
    title: str
    language: str
    score: float
    diagnosis: str | None
    shared_terms: list[SharedTermOut] = Field(description="why it is similar: words both cases use")
    excerpt: str = Field(description="a short part of its de-identified text, around the shared terms")


class UrgencyOut(BaseModel):
    level: Literal["emergent", "urgent", "routine"]
    score: float = Field(description="P(emergent)")


class ModelOut(BaseModel):
    name: str
    version: int


class RouteOut(BaseModel):
    request_id: str
    language: str
    specialties: list[SpecialtyOut]
    doctors: list[DoctorOut]
    similar_cases: list[SimilarCaseOut]
    urgency: UrgencyOut
    novelty: float = Field(description="0-1: share of past cases more like the resolved ones than this")
    broadcast: bool = Field(description="novel enough to show to everyone, not only the routed doctors")
    redactions: dict[str, int] = Field(description=REDACTIONS)
    model: ModelOut


class CaseOut(BaseModel):
    id: str
    title: str
    text: str = Field(description="the de-identified text, as stored")
    language: str
    country: str | None
    author_id: str | None
    created_at: datetime
    resolved: bool
    diagnosis: str | None
    redactions: dict[str, int] = Field(description=REDACTIONS)


class FeedbackOut(BaseModel):
    id: str
    case_id: str
    similar_case_id: str | None
    doctor_id: str | None
    useful: bool
    by: str | None
    created_at: datetime


class Problem(BaseModel):
    """RFC 9457 problem details (application/problem+json)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = Field(default=None, description="one entry per invalid field")
