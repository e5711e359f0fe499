"""A synthetic world's cases as matchable texts, with the metadata search filters use."""

from __future__ import annotations

from pathlib import Path

from ml.data.synthetic import RAW, SyntheticWorld
from ml.index.slots import CaseMeta
from ml.matching import CaseText, post_text


def world_case_texts(world_dir: Path, *, resolved_only: bool = True) -> list[CaseText]:
    """Every case of the world as written (or only the resolved ones), specialties from its resolution."""
    world = SyntheticWorld(world_dir, deidentify=RAW).read()
    resolutions = {r.case_id: r for r in world.resolutions}
    texts = []
    for case in world.cases:
        resolution = resolutions.get(case.case_id)
        if resolved_only and resolution is None:
            continue
        meta = CaseMeta(
            resolved=resolution is not None,
            language=case.language,
            specialties=resolution.specialties if resolution else (),
        )
        texts.append(CaseText(case.case_id, post_text(case.title, case.text), meta))
    return texts
