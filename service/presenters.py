"""Stored records and routing results as the API's response bodies."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel, TypeAdapter

from ml.language import UNKNOWN
from ml.matching import post_text
from ml.privacy.summary import redaction_counts
from ml.reasons import Reason
from ml.routing.engine import RouteRequest, RouteResult
from ml.shared_terms import excerpt, shared_terms
from ml.taxonomy import load_taxonomy
from service.runtime import Runtime
from service.schemas import (
    CaseOut,
    DoctorOut,
    FeedbackOut,
    ModelOut,
    ReasonOut,
    RouteOut,
    SharedTermOut,
    SimilarCaseOut,
    SpecialtyOut,
    UrgencyOut,
)
from service.store.records import Feedback, StoredCase

_SIMILAR_LIST = TypeAdapter(list[SimilarCaseOut])


def json_response(body: BaseModel | list[SimilarCaseOut]) -> Response:
    """`body` serialised once, as it is: FastAPI would validate a returned model against the
    route's response model again before serialising it (the schema in /docs stays the same)."""
    content = body.model_dump_json() if isinstance(body, BaseModel) else _SIMILAR_LIST.dump_json(body)
    return Response(content, media_type="application/json")


def case_out(case: StoredCase) -> CaseOut:
    return CaseOut(
        id=case.case_id,
        title=case.title,
        text=case.text,
        language=case.language,
        country=case.country or None,
        author_id=case.author_id or None,
        created_at=case.created_at,
        resolved=case.resolved,
        diagnosis=case.resolution.diagnosis if case.resolution else None,
        redactions=redaction_counts(case.title, case.text),
    )


def feedback_out(feedback: Feedback) -> FeedbackOut:
    return FeedbackOut(
        id=feedback.feedback_id,
        case_id=feedback.case_id,
        similar_case_id=feedback.similar_case_id,
        doctor_id=feedback.doctor_id,
        useful=feedback.useful,
        by=feedback.by,
        created_at=feedback.created_at,
    )


def similar_out(rt: Runtime, request: RouteRequest, result: RouteResult) -> list[SimilarCaseOut]:
    stored = rt.store.get_cases([hit.case_id for hit in result.similar])
    # a case erased since the search is never shown
    shown = [(hit, case) for hit in result.similar if (case := stored.get(hit.case_id)) is not None]
    matcher = rt.engine.matcher
    shared = shared_terms(
        post_text(request.title, request.text),
        [post_text(case.title, case.text) for _, case in shown],
        matcher.lexicon,
        document_share=matcher.index.document_share,
    )
    return [
        SimilarCaseOut(
            case_id=case.case_id,
            title=case.title,
            language=case.language,
            score=round(hit.score, 6),
            diagnosis=case.resolution.diagnosis if case.resolution else None,
            shared_terms=[SharedTermOut(term=t.term, query_term=t.query_term) for t in terms],
            excerpt=excerpt(case.text, terms),
        )
        for (hit, case), terms in zip(shown, shared, strict=True)
    ]


def reason_out(reason: Reason) -> ReasonOut:
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in reason.params.items()}
    return ReasonOut(code=reason.code, params=params)


def route_out(
    rt: Runtime, request_id: str, request: RouteRequest, result: RouteResult, version: int
) -> RouteOut:
    taxonomy = load_taxonomy()
    language = result.language if result.language != UNKNOWN else "en"
    return RouteOut(
        request_id=request_id,
        language=result.language,
        specialties=[
            SpecialtyOut(
                code=s.code, name=taxonomy.get(s.code).name(language), probability=round(s.probability, 6)
            )
            for s in result.specialties
        ],
        doctors=[
            DoctorOut(
                doctor_id=d.doctor_id,
                score=round(d.score, 6),
                reasons=[r.english for r in d.reasons],
                reason_codes=[reason_out(r) for r in d.reasons],
            )
            for d in result.doctors
        ],
        similar_cases=similar_out(rt, request, result),
        urgency=UrgencyOut(level=result.urgency, score=round(result.urgency_probabilities["emergent"], 6)),
        novelty=round(result.novelty, 6),
        broadcast=result.broadcast,
        redactions=redaction_counts(request.title, request.text),
        model=ModelOut(name="case-router", version=version),
    )
