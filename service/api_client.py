"""Load a `PlatformData` into a running service through its HTTP API, as a platform would.

Doctors first (`PUT /v1/doctors/{id}`), then every case, answer, resolution and verdict in one
global time order, so each event reaches the service after the case (and the similar case) it
is about, the way the service refuses to take them otherwise. A 429 waits out its Retry-After
and tries again (the request was not taken); any other response that is not a 2xx stops the load
with a `PostError` naming the record: nothing is dropped silently.

The API has no batch endpoint: one request per record. Works with any httpx-compatible client
(`httpx.Client`, FastAPI's `TestClient`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ml.data.records import (
    AnswerRecord,
    CaseRecord,
    DoctorRecord,
    FeedbackRecord,
    PlatformData,
    ResolutionRecord,
)

logger = logging.getLogger(__name__)

_ERROR_BODY_CHARS = 500
_RATE_LIMITED_TRIES = 10
_PLURAL = {
    "doctor": "doctors",
    "case": "cases",
    "answer": "answers",
    "resolution": "resolutions",
    "feedback": "feedback",
}


class Response(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


class HttpClient(Protocol):
    """What is used of `httpx.Client` (which FastAPI's `TestClient` is)."""

    def post(self, url: str, *, json: Any = None, headers: Mapping[str, str] | None = None) -> Response: ...

    def put(self, url: str, *, json: Any = None, headers: Mapping[str, str] | None = None) -> Response: ...


class PostError(RuntimeError):
    """The service refused (or failed on) one record of the load."""

    def __init__(self, call: Call, status: int, body: str) -> None:
        super().__init__(
            f"{call.kind} {call.record_id!r}: {call.method} {call.path} answered {status}: "
            f"{body[:_ERROR_BODY_CHARS]}"
        )
        self.call = call
        self.status = status


@dataclass(frozen=True, slots=True)
class Call:
    """One record as one request."""

    kind: str  # doctor | case | answer | resolution | feedback
    record_id: str
    method: str
    path: str
    body: dict[str, Any] = field(repr=False)  # may hold case text


def post_platform_data(
    client: HttpClient, data: PlatformData, *, headers: Mapping[str, str]
) -> dict[str, int]:
    """Post every record of `data` into an empty service; return how many were posted of each kind
    (doctors, cases, answers, resolutions, feedback).

    `headers` must authorise both the ingest and the route scope (feedback is a route-scope call).
    Answer ids are not sent: the service names an answer `<case id>:<doctor id>`.
    """
    counts = dict.fromkeys(_PLURAL.values(), 0)
    for call in platform_calls(data):
        _send(client, call, headers=headers)
        counts[_PLURAL[call.kind]] += 1
    logger.info("posted %s", counts)
    return counts


def platform_calls(data: PlatformData) -> Iterator[Call]:
    """The requests that load `data`, in the order they must be sent."""
    for doctor in data.doctors:
        yield Call("doctor", doctor.doctor_id, "PUT", f"/v1/doctors/{doctor.doctor_id}", _doctor_body(doctor))
    for *_, record in sorted(_events(data), key=lambda e: (e[0], e[1], _key(e[2]))):
        match record:
            case CaseRecord():
                yield Call("case", record.case_id, "POST", "/v1/cases", _case_body(record))
            case AnswerRecord():
                path = f"/v1/cases/{record.case_id}/answers"
                yield Call("answer", record.answer_id, "POST", path, _answer_body(record))
            case ResolutionRecord():
                path = f"/v1/cases/{record.case_id}/resolution"
                yield Call("resolution", record.case_id, "POST", path, _resolution_body(record))
            case FeedbackRecord():
                path = f"/v1/cases/{record.case_id}/feedback"
                yield Call("feedback", _key(record), "POST", path, _feedback_body(record))


_Event = CaseRecord | AnswerRecord | ResolutionRecord | FeedbackRecord


def _events(data: PlatformData) -> Iterator[tuple[datetime, int, _Event]]:
    """Every timed record with its time; at one instant the case comes before what hangs off it."""
    yield from ((c.created_at, 0, c) for c in data.cases)
    yield from ((a.created_at, 1, a) for a in data.answers)
    yield from ((r.resolved_at, 2, r) for r in data.resolutions)
    yield from ((f.created_at, 3, f) for f in data.feedback)


def _key(record: _Event) -> str:
    """A record's name in errors and its tie-break in the order."""
    if isinstance(record, AnswerRecord):
        return record.answer_id
    if isinstance(record, FeedbackRecord):
        return f"{record.case_id}->{record.similar_case_id or record.doctor_id}"
    return record.case_id


def _send(client: HttpClient, call: Call, *, headers: Mapping[str, str]) -> None:
    send = client.put if call.method == "PUT" else client.post
    for _ in range(_RATE_LIMITED_TRIES):
        response = send(call.path, json=call.body, headers=headers)
        if response.status_code != 429:
            break
        wait = float(response.headers.get("retry-after") or 1)
        logger.info("%s %s rate limited: retrying in %.0f s", call.method, call.path, wait)
        time.sleep(wait)
    if not 200 <= response.status_code < 300:
        raise PostError(call, response.status_code, response.text)


def _iso(at: datetime) -> str:
    # a naive time goes out without a zone and the service refuses it (422), naming the record
    return at.isoformat()


def _doctor_body(doctor: DoctorRecord) -> dict[str, Any]:
    return {
        "specialties": list(doctor.specialties),
        "languages": list(doctor.languages),
        "interests": list(doctor.interests),
        "country": doctor.country or None,
        "timezone": doctor.timezone,
    }


def _case_body(case: CaseRecord) -> dict[str, Any]:
    return {
        "id": case.case_id,
        "title": case.title,
        "text": case.text,
        "language": case.language,
        "country": case.country or None,
        "author_id": case.author_id or None,
        "patient_age": case.patient_age,
        "patient_sex": case.patient_sex,
        "created_at": _iso(case.created_at),
    }


def _answer_body(answer: AnswerRecord) -> dict[str, Any]:
    return {"doctor_id": answer.doctor_id, "created_at": _iso(answer.created_at), "accepted": answer.accepted}


def _resolution_body(resolution: ResolutionRecord) -> dict[str, Any]:
    return {
        "diagnosis": resolution.diagnosis,
        "specialties": list(resolution.specialties),
        "created_at": _iso(resolution.resolved_at),
    }


def _feedback_body(feedback: FeedbackRecord) -> dict[str, Any]:
    body: dict[str, Any] = {"useful": feedback.useful, "created_at": _iso(feedback.created_at)}
    if feedback.similar_case_id is not None:
        body["similar_case_id"] = feedback.similar_case_id
    if feedback.doctor_id is not None:
        body["doctor_id"] = feedback.doctor_id
    if feedback.by is not None:
        body["by"] = feedback.by
    return body
