"""Operations and reference data: model reload, the specialty list."""

from __future__ import annotations

from fastapi import APIRouter

from ml.taxonomy import load_taxonomy
from service.deps import ERRORS, Rt, requires
from service.routes.prefix import PREFIX

router = APIRouter(prefix=PREFIX)


@router.post("/admin/reload", tags=["operations"], responses=ERRORS, dependencies=[requires("admin")])
def reload_model(rt: Rt) -> dict[str, int | None]:
    """Check the MLflow champion alias now and swap to a new version without dropping requests."""
    return {"model_version": rt.watcher.check()}


@router.get("/specialties", dependencies=[requires("route")])
def specialties() -> list[dict[str, str | None]]:
    """The 63 specialty codes the API speaks, with English and Spanish names."""
    return [
        {"code": s.code, "name_en": s.name_en, "name_es": s.name_es, "parent": s.parent}
        for s in load_taxonomy().specialties
    ]
