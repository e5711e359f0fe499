"""Routing: specialties, doctors and similar resolved cases for a new or stored case."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from ml.routing.engine import RouteRequest
from service.case_service import CaseService
from service.deps import ERRORS, NOT_FOUND, Cases, IdInPath, Rt, requires
from service.intake import case_language, deidentified
from service.presenters import json_response, route_out, similar_out
from service.routes.prefix import PREFIX
from service.schemas import RouteIn, RouteOut, SimilarCaseOut
from service.store import records

logger = logging.getLogger(__name__)
router = APIRouter(prefix=PREFIX)


@router.post("/route", response_model=RouteOut, responses=ERRORS, dependencies=[requires("route")])
def route_case(
    body: RouteIn, rt: Rt, cases: Cases, http: Request, after_response: BackgroundTasks
) -> Response:
    """Specialties, doctors, similar resolved cases, urgency and novelty for a new or stored case."""
    if body.case is not None:
        language = case_language(body.case)
        title, text = deidentified(rt.deid, body.case, language)
        request = RouteRequest(title, text, language)
    else:
        stored = cases.get(str(body.case_id))
        request = RouteRequest(
            stored.title, stored.text, stored.language, author_id=stored.author_id, case_id=stored.case_id
        )
    request = replace(
        request,
        limit_specialties=body.limit_specialties,
        limit_doctors=body.limit_doctors,
        limit_similar=body.limit_similar,
        unavailable=rt.state.unavailable(),
    )
    result = rt.engine.route(request)
    request_id = (
        getattr(http.state, "request_id", None) or uuid.uuid4().hex
    )  # the id in logs and x-request-id
    version = rt.model_version or 0
    after_response.add_task(  # the audit record waits until the answer has left: off the latency path
        _record_routing,
        cases,
        records.RoutingDecision(
            request_id,
            str(version),
            tuple(records.RankedSpecialty(s.code, s.probability) for s in result.specialties),
            tuple(d.doctor_id for d in result.doctors),
            case_id=request.case_id,
        ),
    )
    return json_response(route_out(rt, request_id, request, result, version))


@router.get(
    "/cases/{case_id}/similar",
    response_model=list[SimilarCaseOut],
    responses=NOT_FOUND,
    dependencies=[requires("route")],
)
def similar_cases(
    case_id: IdInPath, rt: Rt, cases: Cases, limit: Annotated[int, Query(ge=1, le=50)] = 5
) -> Response:
    """The resolved cases most like a stored one (never itself)."""
    stored = cases.get(case_id)
    request = RouteRequest(
        stored.title, stored.text, stored.language, case_id=case_id, limit_doctors=0, limit_similar=limit
    )
    return json_response(similar_out(rt, request, rt.engine.route(request)))


def _record_routing(cases: CaseService, decision: records.RoutingDecision) -> None:
    try:
        cases.record_routing(decision)
    except Exception:  # after the response: nobody to tell but the log (which never holds case text)
        logger.exception("routing decision %s not recorded", decision.request_id)
