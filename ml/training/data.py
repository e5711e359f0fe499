"""Labelled texts for the specialty router, from the synthetic world and the real corpora."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml.evaluation.corpora import load_codiesp, load_mtsamples
from ml.matching import post_text
from ml.synthetic.splits import split_of
from ml.synthetic.world import read_table
from ml.taxonomy import load_taxonomy


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    specialties: tuple[str, ...]  # the codes a correct router may put first
    language: str
    source: str  # synthetic | mtsamples | codiesp


def synthetic_specialties(world_dir: Path, split: str) -> list[LabelledText]:
    """Posts of `split`'s months; the right answer is the condition's primary specialty.

    (Secondary specialties should see a case too, but hit@k is scored on the primary one: the
    strictest reading.)
    """
    labels = {r["case_id"]: r for r in read_table(world_dir, "case_labels").to_pylist()}
    return [
        LabelledText(
            post_text(case["title"], case["body"]),
            (labels[case["case_id"]]["primary_specialty"],),
            case["language"],
            "synthetic",
        )
        for case in read_table(world_dir, "cases").to_pylist()
        if split_of(case["created_at"]) == split
    ]


def mtsamples_specialties(split: str) -> list[LabelledText]:
    return [LabelledText(n.text, n.specialties, "en", "mtsamples") for n in load_mtsamples(split)]


def codiesp_specialties(split: str) -> list[LabelledText]:
    """Spanish case reports labelled by their journal's specialty (reports from general journals dropped)."""
    taxonomy = load_taxonomy()
    return [
        LabelledText(d.spanish, (d.label,), "es", "codiesp")
        for d in load_codiesp(split)
        if d.label in taxonomy
    ]
