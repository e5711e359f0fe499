"""Cases and what happens to them: ingest, read, erase, answers, resolution, feedback."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.deps import ERRORS, NOT_FOUND, Cases, IdInPath, requires
from service.presenters import case_out, feedback_out
from service.routes.prefix import PREFIX
from service.schemas import (
    AnswerIn,
    CaseOut,
    FeedbackIn,
    FeedbackOut,
    NewCase,
    Problem,
    ResolutionIn,
    StoredCaseIn,
)

router = APIRouter(prefix=PREFIX)


@router.post(
    "/cases",
    status_code=201,
    response_model=CaseOut,
    responses={**ERRORS, 409: {"model": Problem}},
    dependencies=[requires("ingest")],
)
def create_case(body: NewCase, cases: Cases, response: Response) -> CaseOut:
    """Store a case (idempotent for identical content; 409 if the id holds other content)."""
    stored = cases.put_case(body.id, body, upsert=False)
    response.headers["Location"] = f"/v1/cases/{body.id}"
    return case_out(stored)


@router.put("/cases/{case_id}", response_model=CaseOut, responses=ERRORS, dependencies=[requires("ingest")])
def upsert_case(case_id: IdInPath, body: StoredCaseIn, cases: Cases) -> CaseOut:
    return case_out(cases.put_case(case_id, body, upsert=True))


@router.get("/cases/{case_id}", response_model=CaseOut, responses=NOT_FOUND, dependencies=[requires("route")])
def get_case(case_id: IdInPath, cases: Cases) -> CaseOut:
    return case_out(cases.get(case_id))


@router.delete("/cases/{case_id}", status_code=204, responses=NOT_FOUND, dependencies=[requires("ingest")])
def delete_case(case_id: IdInPath, cases: Cases) -> Response:
    """Erase a case (with its answers, resolution and feedback, and the feedback naming it as a
    similar case) from the store, the index, the embedding cache and every later result."""
    cases.delete_case(case_id)
    return Response(status_code=204)


@router.post(
    "/cases/{case_id}/answers",
    status_code=201,
    responses={**NOT_FOUND, 409: {"model": Problem}},
    dependencies=[requires("ingest")],
)
def add_answer(case_id: IdInPath, body: AnswerIn, cases: Cases) -> dict[str, str]:
    answer_id, outcome = cases.add_answer(case_id, body)
    return {"answer_id": answer_id, "outcome": outcome.value}


@router.post("/cases/{case_id}/resolution", responses=NOT_FOUND, dependencies=[requires("ingest")])
def resolve_case(case_id: IdInPath, body: ResolutionIn, cases: Cases) -> CaseOut:
    """Mark a case resolved: it becomes a similar-case candidate at once."""
    return case_out(cases.resolve_case(case_id, body))


@router.post(
    "/cases/{case_id}/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses=NOT_FOUND,
    dependencies=[requires("route")],
)
def add_feedback(case_id: IdInPath, body: FeedbackIn, cases: Cases) -> FeedbackOut:
    """Record whether a similar case or a doctor suggested for a case was useful: training data."""
    return feedback_out(cases.add_feedback(case_id, body))
