"""The case store as training data: every case, answer, resolution, doctor and verdict, as the
typed records `ml.data` speaks (`PlatformData`), with where they came from.

Rows are read page by page, each page in its own short transaction, so an export never holds the
store's write lock; writes committed meanwhile may or may not be in it. The export covers at least
the change-feed watermark read before its first row (`provenance["watermark"]`), and it is
self-consistent: an answer or verdict on a case outside the export is left out with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime

from sqlalchemy.engine import URL, make_url

from ml.data.records import (
    AnswerRecord,
    CaseRecord,
    DoctorRecord,
    FeedbackRecord,
    PlatformData,
    ResolutionRecord,
)
from service.store.records import Resolution, StoredCase
from service.store.repository import CaseStore

logger = logging.getLogger(__name__)

_Record = CaseRecord | AnswerRecord | ResolutionRecord | DoctorRecord | FeedbackRecord
# query parameters a driver reads credentials from (libpq: password, passfile, sslpassword)
_SECRET_QUERY_WORDS = ("pass", "secret", "token")


def export_platform_data(store: CaseStore, database_url: str) -> PlatformData:
    """Everything the store holds now, oldest first, with `truth={}` and a credential-free provenance.

    Cases come by posting time then id, answers by answer time then id, resolutions by resolution
    time then case id, doctors by id, verdicts by time then id.
    """
    watermark = store.head_seq()  # before any row: whatever is read next covers it
    latest: dict[str, StoredCase] = {}
    for batch in store.iter_changes(0):
        for case in batch.cases:  # a case changed while paging comes again, newer: keep the newest
            seen = latest.get(case.case_id)
            if seen is None or case.seq > seen.seq:
                latest[case.case_id] = case
    stored = sorted(latest.values(), key=lambda c: (c.created_at, c.case_id))
    case_ids = set(latest)
    cases = tuple(_case(c) for c in stored)
    resolutions = tuple(
        sorted(
            (_resolution(c.case_id, c.resolution) for c in stored if c.resolution is not None),
            key=lambda r: (r.resolved_at, r.case_id),
        )
    )
    answers = tuple(
        AnswerRecord(a.answer_id, a.case_id, a.doctor_id, a.created_at, a.accepted)
        for a in (entry.answer for entry in store.all_answers())
        if a.case_id in case_ids  # a case posted after the case pages were read: not in this export
    )
    doctors = tuple(
        DoctorRecord(d.doctor_id, d.specialties, d.interests, d.languages, d.country, d.timezone)
        for d in store.list_doctors()
    )
    feedback = tuple(
        FeedbackRecord(f.case_id, f.useful, f.created_at, f.similar_case_id, f.doctor_id, f.by)
        for f in store.all_feedback()
        if f.case_id in case_ids and (f.similar_case_id is None or f.similar_case_id in case_ids)
    )
    data = PlatformData(cases, answers, resolutions, doctors, feedback, truth={})
    provenance = {
        "source": "store",
        "url": credential_free_url(database_url),
        "watermark": str(watermark),
        "data_hash": data_hash(data),
        **{kind: str(count) for kind, count in data.counts().items()},
    }
    logger.info("exported the store at watermark %d: %s", watermark, data.counts())
    return PlatformData(cases, answers, resolutions, doctors, feedback, truth={}, provenance=provenance)


def credential_free_url(database_url: str) -> str:
    """`database_url` without user name, password or credential query parameters: fit for logs and
    MLflow tags (not for connecting)."""
    url = make_url(database_url)
    kept = {
        name: value
        for name, value in url.query.items()
        if not any(word in name.lower() for word in _SECRET_QUERY_WORDS)
    }
    # URL.set() takes None as "leave as is": build the URL again without the credentials
    bare = URL.create(url.drivername, host=url.host, port=url.port, database=url.database, query=kept)
    return bare.render_as_string(hide_password=False)


def data_hash(data: PlatformData) -> str:
    """SHA-256 (first 16 hex digits) of every record, in export order: equal for equal content."""
    digest = hashlib.sha256()
    parts: Iterable[tuple[str, _Record]] = (
        *(("case", r) for r in data.cases),
        *(("answer", r) for r in data.answers),
        *(("resolution", r) for r in data.resolutions),
        *(("doctor", r) for r in data.doctors),
        *(("feedback", r) for r in data.feedback),
    )
    for kind, record in parts:
        line = json.dumps([kind, asdict(record)], default=_iso, ensure_ascii=False, separators=(",", ":"))
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot hash a {type(value).__name__}")


def _case(case: StoredCase) -> CaseRecord:
    return CaseRecord(
        case.case_id,
        case.title,
        case.text,
        case.language,
        case.author_id,
        case.created_at,
        case.country,
        case.patient_age,
        case.patient_sex,
    )


def _resolution(case_id: str, resolution: Resolution) -> ResolutionRecord:
    return ResolutionRecord(case_id, resolution.diagnosis, resolution.specialties, resolution.resolved_at)
