"""The /v1 routes: route a case, ingest and erase cases, answers, resolutions, feedback, doctors.

Every write commits to the store first (the acknowledgement), then brings the index and the
in-memory doctor state up to date; text is de-identified before it is stored or embedded.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Path, Query, Request, Response

from ml.language import UNKNOWN, detect_language
from ml.matching import post_text
from ml.privacy.summary import redaction_counts
from ml.routing.engine import RouteRequest, RouteResult
from ml.shared_terms import excerpt, shared_terms
from ml.taxonomy import load_taxonomy
from service.auth import ApiKey, Scope
from service.errors import ApiError
from service.runtime import Runtime, doctor_profile
from service.schemas import (
    IDENTIFIER_PATTERN,
    AnswerIn,
    CaseIn,
    CaseOut,
    DoctorIn,
    DoctorOut,
    FeedbackIn,
    FeedbackOut,
    ModelOut,
    NewCase,
    Problem,
    ResolutionIn,
    RouteIn,
    RouteOut,
    SharedTermOut,
    SimilarCaseOut,
    SpecialtyOut,
    StoredCaseIn,
    UrgencyOut,
)
from service.store import records
from service.store.errors import (
    AnswerConflictError,
    CaseConflictError,
    UnknownCaseError,
    UnknownDoctorError,
)
from service.store.records import Feedback

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1")
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": Problem, "description": description}
    for status, description in {
        400: "malformed JSON",
        401: "missing or unknown API key",
        403: "the key lacks the scope",
        413: "body too large",
        429: "the key is over its rate limit (see Retry-After)",
        422: "a field failed validation (named in `errors`)",
    }.items()
}


def runtime(request: Request) -> Runtime:
    value: Runtime = request.app.state.runtime
    return value


def _requires(scope: Scope):  # type: ignore[no-untyped-def]
    def check(request: Request, authorization: Annotated[str | None, Header()] = None) -> ApiKey:
        rt = runtime(request)
        key = rt.auth.authorize(authorization, scope)
        rt.limiter.take(key.name)
        request.state.key_name = key.name
        return key

    return Depends(check)


Rt = Annotated[Runtime, Depends(runtime)]
IdInPath = Annotated[str, Path(pattern=IDENTIFIER_PATTERN, description="letters, digits and . _ : -")]


@router.post("/route", response_model=RouteOut, responses=ERRORS, dependencies=[_requires("route")])
def route_case(body: RouteIn, rt: Rt, http: Request, after_response: BackgroundTasks) -> RouteOut:
    """Specialties, doctors, similar resolved cases, urgency and novelty for a new or stored case."""
    if body.case is not None:
        language = body.case.language or _language(body.case)
        title, text = _deidentified(rt, body.case, language)
        request = RouteRequest(
            title,
            text,
            language,
            limit_specialties=body.limit_specialties,
            limit_doctors=body.limit_doctors,
            limit_similar=body.limit_similar,
        )
    else:
        stored = _stored(rt, str(body.case_id))
        request = RouteRequest(
            stored.title,
            stored.text,
            stored.language,
            author_id=stored.author_id,
            case_id=stored.case_id,
            limit_specialties=body.limit_specialties,
            limit_doctors=body.limit_doctors,
            limit_similar=body.limit_similar,
        )
    request = _with_unavailable(rt, request)
    result = rt.engine.route(request)
    request_id = (
        getattr(http.state, "request_id", None) or uuid.uuid4().hex
    )  # the id in logs and x-request-id
    version = rt.model_version or 0
    after_response.add_task(  # the audit record waits until the answer has left: off the latency path
        _record_routing,
        rt,
        records.RoutingDecision(
            request_id,
            str(version),
            tuple(records.RankedSpecialty(s.code, s.probability) for s in result.specialties),
            tuple(d.doctor_id for d in result.doctors),
            case_id=request.case_id,
        ),
    )
    return _route_out(rt, request_id, request, result, version)


@router.post(
    "/cases",
    status_code=201,
    response_model=CaseOut,
    responses={**ERRORS, 409: {"model": Problem}},
    dependencies=[_requires("ingest")],
)
def create_case(body: NewCase, rt: Rt, response: Response) -> CaseOut:
    """Store a case (idempotent for identical content; 409 if the id holds other content)."""
    stored = _put(rt, body.id, body, upsert=False)
    response.headers["Location"] = f"/v1/cases/{body.id}"
    return stored


@router.put("/cases/{case_id}", response_model=CaseOut, responses=ERRORS, dependencies=[_requires("ingest")])
def upsert_case(case_id: IdInPath, body: StoredCaseIn, rt: Rt) -> CaseOut:
    return _put(rt, case_id, body, upsert=True)


@router.get(
    "/cases/{case_id}",
    response_model=CaseOut,
    responses={**ERRORS, 404: {"model": Problem}},
    dependencies=[_requires("route")],
)
def get_case(case_id: IdInPath, rt: Rt) -> CaseOut:
    return _case_out(_stored(rt, case_id))


@router.delete(
    "/cases/{case_id}",
    status_code=204,
    responses={**ERRORS, 404: {"model": Problem}},
    dependencies=[_requires("ingest")],
)
def delete_case(case_id: IdInPath, rt: Rt) -> Response:
    """Erase a case (with its answers, resolution and feedback, and the feedback naming it as a
    similar case) from the store, the index, the embedding cache and every later result."""
    stored = _stored(rt, case_id)
    rt.store.delete_case(case_id)
    forget = getattr(rt.encoder, "forget", None)
    if forget is not None:
        forget([post_text(stored.title, stored.text)])
    rt.answers.forget(case_id)
    rt.sync.catch_up()
    return Response(status_code=204)


@router.post(
    "/cases/{case_id}/answers",
    status_code=201,
    responses={**ERRORS, 404: {"model": Problem}},
    dependencies=[_requires("ingest")],
)
def add_answer(case_id: IdInPath, body: AnswerIn, rt: Rt) -> dict[str, str]:
    stored = _stored(rt, case_id)
    answered_at = body.created_at or datetime.now(UTC)
    _not_before(answered_at, stored, detail="an answer cannot come before its case")
    answer_id = f"{case_id}:{body.doctor_id}"  # one answer per doctor and case
    try:
        outcome = rt.store.add_answer(
            records.Answer(answer_id, case_id, body.doctor_id, answered_at, body.accepted)
        )
    except AnswerConflictError:
        raise ApiError(
            409, "Conflict", f"doctor {body.doctor_id} already answered case {case_id} at another time"
        ) from None
    if outcome == records.Outcome.CREATED:
        rt.answers.add(case_id, body.doctor_id)
        rt.engine.record_answer(
            body.doctor_id,
            case_vector=rt.case_vector(stored.title, stored.text),
            posted_at=stored.created_at,
            answered_at=answered_at,
        )
    if body.accepted and outcome != records.Outcome.UNCHANGED:
        rt.engine.record_acceptance(body.doctor_id)
    return {"answer_id": answer_id, "outcome": outcome.value}


@router.post(
    "/cases/{case_id}/resolution",
    responses={**ERRORS, 404: {"model": Problem}},
    dependencies=[_requires("ingest")],
)
def resolve_case(case_id: IdInPath, body: ResolutionIn, rt: Rt) -> CaseOut:
    """Mark a case resolved: it becomes a similar-case candidate at once."""
    resolved_at = body.created_at or datetime.now(UTC)
    _not_before(resolved_at, _stored(rt, case_id), detail="a resolution cannot come before its case")
    try:
        rt.store.resolve_case(
            case_id,
            records.Resolution(body.diagnosis, tuple(body.specialties), resolved_at, body.summary),
        )
    except UnknownCaseError:  # erased since the check above
        raise ApiError(404, "Not Found", f"no case {case_id!r}") from None
    rt.sync.catch_up()
    return _case_out(_stored(rt, case_id))


@router.post(
    "/cases/{case_id}/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses={**ERRORS, 404: {"model": Problem}},
    dependencies=[_requires("route")],
)
def add_feedback(case_id: IdInPath, body: FeedbackIn, rt: Rt) -> FeedbackOut:
    """Record whether a similar case or a doctor suggested for a case was useful: training data."""
    stored = _stored(rt, case_id)
    given_at = body.created_at or datetime.now(UTC)
    if body.similar_case_id == case_id:
        raise _invalid("similar_case_id", f"{case_id!r} is the case itself, never its own similar case")
    _not_before(given_at, stored, detail="feedback cannot come before its case")
    if body.similar_case_id is not None:
        similar = rt.store.get_cases([body.similar_case_id]).get(body.similar_case_id)
        if similar is None:
            raise _invalid("similar_case_id", f"no case {body.similar_case_id!r}")
        _not_before(given_at, similar, detail="feedback cannot come before the similar case it names")
    try:
        feedback = rt.store.add_feedback(
            Feedback(
                uuid.uuid4().hex,
                case_id,
                body.useful,
                given_at,
                similar_case_id=body.similar_case_id,
                doctor_id=body.doctor_id,
                by=body.by,
            )
        )
    except UnknownCaseError as error:  # erased since the checks above
        if error.case_id == case_id:
            raise ApiError(404, "Not Found", f"no case {case_id!r}") from None
        raise _invalid("similar_case_id", f"no case {error.case_id!r}") from None
    except UnknownDoctorError as error:
        raise _invalid("doctor_id", f"no doctor {error.doctor_id!r}") from None
    return FeedbackOut(
        id=feedback.feedback_id,
        case_id=feedback.case_id,
        similar_case_id=feedback.similar_case_id,
        doctor_id=feedback.doctor_id,
        useful=feedback.useful,
        by=feedback.by,
        created_at=feedback.created_at,
    )


@router.put("/doctors/{doctor_id}", responses=ERRORS, dependencies=[_requires("ingest")])
def put_doctor(doctor_id: IdInPath, body: DoctorIn, rt: Rt) -> dict[str, str]:
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
    outcome = rt.store.put_doctor(doctor)
    rt.engine.upsert_doctor(doctor_profile(doctor))
    if body.available:
        rt.unavailable.discard(doctor_id)
    else:
        rt.unavailable.add(doctor_id)
    return {"doctor_id": doctor_id, "outcome": outcome.value}


@router.get(
    "/cases/{case_id}/similar",
    response_model=list[SimilarCaseOut],
    responses={**ERRORS, 404: {"model": Problem}},
    dependencies=[_requires("route")],
)
def similar_cases(
    case_id: IdInPath, rt: Rt, limit: Annotated[int, Query(ge=1, le=50)] = 5
) -> list[SimilarCaseOut]:
    """The resolved cases most like a stored one (never itself)."""
    stored = _stored(rt, case_id)
    request = RouteRequest(
        stored.title, stored.text, stored.language, case_id=case_id, limit_doctors=0, limit_similar=limit
    )
    return _similar_out(rt, request, rt.engine.route(request))


@router.post("/admin/reload", tags=["operations"], responses=ERRORS, dependencies=[_requires("admin")])
def reload_model(rt: Rt) -> dict[str, int | None]:
    """Check the MLflow champion alias now and swap to a new version without dropping requests."""
    return {"model_version": rt.watcher.check()}


@router.get("/specialties", dependencies=[_requires("route")])
def specialties() -> list[dict[str, str | None]]:
    """The 63 specialty codes the API speaks, with English and Spanish names."""
    return [
        {"code": s.code, "name_en": s.name_en, "name_es": s.name_es, "parent": s.parent}
        for s in load_taxonomy().specialties
    ]


# --- helpers ----------------------------------------------------------------------------------------


def _language(case: CaseIn) -> str:
    detected = detect_language(post_text(case.title, case.text))
    if detected == UNKNOWN:
        raise ApiError(
            422, "Language unknown", "could not tell whether the case is English or Spanish: send `language`"
        )
    return detected


def _deidentified(rt: Runtime, case: CaseIn, language: str) -> tuple[str, str]:
    """Title and text with identifiers replaced: nothing raw is stored or embedded."""
    return rt.deid.deidentify(case.title, language).text, rt.deid.deidentify(case.text, language).text


def _put(rt: Runtime, case_id: str, body: StoredCaseIn, *, upsert: bool) -> CaseOut:
    language = body.language or _language(body)
    title, text = _deidentified(rt, body, language)
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
    try:
        rt.store.put_case(case, upsert=upsert)
    except CaseConflictError:
        raise ApiError(
            409,
            "Conflict",
            f"case {case_id!r} exists with other content; PUT /v1/cases/{case_id} replaces it",
        ) from None
    rt.sync.catch_up()
    return _case_out(_stored(rt, case_id))


def _invalid(field: str, message: str, *, detail: str = "1 field(s) failed validation") -> ApiError:
    """A 422 naming one field, shaped like the schema's own validation errors."""
    return ApiError(422, "Invalid request", detail, errors=[{"field": field, "message": message}])


def _not_before(at: datetime, case: records.StoredCase, *, detail: str) -> None:
    """Refuse (422 on `created_at`) an event dated before `case` was posted: training splits and
    activity windows are cut by these times."""
    if at < case.created_at:
        raise _invalid(
            "created_at",
            f"{at.isoformat()} is before case {case.case_id!r} was posted ({case.created_at.isoformat()})",
            detail=detail,
        )


def _stored(rt: Runtime, case_id: str) -> records.StoredCase:
    try:
        return rt.store.get_case(case_id)
    except UnknownCaseError:
        raise ApiError(404, "Not Found", f"no case {case_id!r}") from None


def _record_routing(rt: Runtime, decision: records.RoutingDecision) -> None:
    try:
        rt.store.record_routing(decision)
    except Exception:  # after the response: nobody to tell but the log (which never holds case text)
        logger.exception("routing decision %s not recorded", decision.request_id)


def _with_unavailable(rt: Runtime, request: RouteRequest) -> RouteRequest:
    return replace(request, unavailable=frozenset(rt.unavailable))


def _case_out(case: records.StoredCase) -> CaseOut:
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


def _similar_out(rt: Runtime, request: RouteRequest, result: RouteResult) -> list[SimilarCaseOut]:
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


def _route_out(
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
            DoctorOut(doctor_id=d.doctor_id, score=round(d.score, 6), reasons=list(d.reasons))
            for d in result.doctors
        ],
        similar_cases=_similar_out(rt, request, result),
        urgency=UrgencyOut(level=result.urgency, score=round(result.urgency_probabilities["emergent"], 6)),
        novelty=round(result.novelty, 6),
        broadcast=result.broadcast,
        redactions=redaction_counts(request.title, request.text),
        model=ModelOut(name="case-router", version=version),
    )
