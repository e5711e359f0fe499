"""A synthetic world's cases as matchable texts, with the metadata search filters use."""

from __future__ import annotations

from pathlib import Path

from ml.index.slots import CaseMeta
from ml.matching import CaseText, post_text
from ml.synthetic.world import read_table


def world_case_texts(world_dir: Path, *, resolved_only: bool = True) -> list[CaseText]:
    """Every case of the world (or only the resolved ones), specialties from its resolution."""
    resolutions = {r["case_id"]: r for r in read_table(world_dir, "resolutions").to_pylist()}
    texts = []
    for case in read_table(world_dir, "cases").to_pylist():
        resolution = resolutions.get(case["case_id"])
        if resolved_only and resolution is None:
            continue
        meta = CaseMeta(
            resolved=resolution is not None,
            language=case["language"],
            specialties=tuple(resolution["specialties"]) if resolution else (),
        )
        texts.append(CaseText(case["case_id"], post_text(case["title"], case["body"]), meta))
    return texts
