"""Doctor profiles and availability."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import ERRORS, Cases, IdInPath, requires
from service.routes.prefix import PREFIX
from service.schemas import DoctorIn

router = APIRouter(prefix=PREFIX)


@router.put("/doctors/{doctor_id}", responses=ERRORS, dependencies=[requires("ingest")])
def put_doctor(doctor_id: IdInPath, body: DoctorIn, cases: Cases) -> dict[str, str]:
    """Create or replace a doctor's profile; `available: false` keeps them out of routing."""
    return {"doctor_id": doctor_id, "outcome": cases.put_doctor(doctor_id, body).value}
