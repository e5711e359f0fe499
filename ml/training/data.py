"""Labelled texts for the specialty router from the real corpora (platform cases: `ml.training.pipeline`)."""

from __future__ import annotations

from dataclasses import dataclass

from ml.evaluation.corpora import load_codiesp, load_mtsamples
from ml.taxonomy import load_taxonomy


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    specialties: tuple[str, ...]  # the codes a correct router may put first
    language: str
    source: str  # synthetic | store | mtsamples | codiesp


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
