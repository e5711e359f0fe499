"""De-identification scored against real annotators' gold spans, as a black-box scorer sees it.

The held-out scorers send each document to the service and compare what it stored with what was
sent, character by character. Here the redactions' own spans say which characters went, which
is the same thing without the alignment. Counting is on non-space characters, so a redaction
that swallows a neighbouring space neither helps nor hurts:
- a gold span is *removed* when at least 80% of its non-space characters are gone;
- *damage* is the share of removed characters that lie outside every gold span (of any type:
  removing an age or a hospital is not damage, it is over-redaction of a quasi-identifier).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ml.evaluation.corpora import GoldDocument, GoldSpan
from ml.privacy.deid import Redaction
from ml.synthetic.splits import split_of
from ml.synthetic.world import read_table

REMOVED_SHARE = 0.8

# What a post must never keep (names, ids, contact details, street addresses, full or month/day
# dates); the rest of each corpus's types (ages, sex, countries, cities, hospitals, relation words,
# professions, bare years) are reported per type but are not direct identifiers.
DIRECT_IDENTIFIERS: dict[str, frozenset[str]] = {
    "meddocan": frozenset(
        {
            "NOMBRE_SUJETO_ASISTENCIA",
            "NOMBRE_PERSONAL_SANITARIO",
            "FECHAS",
            "CALLE",
            "ID_SUJETO_ASISTENCIA",
            "ID_TITULACION_PERSONAL_SANITARIO",
            "ID_ASEGURAMIENTO",
            "ID_CONTACTO_ASISTENCIAL",
            "CORREO_ELECTRONICO",
            "NUMERO_TELEFONO",
            "NUMERO_FAX",
        }
    ),
    "physionet": frozenset(
        {"PTName", "PTNameInitial", "RelativeProxyName", "HCPName", "Date", "Phone", "Other"}
    ),
    "planted": frozenset(
        {"NAME", "DATE_OF_BIRTH", "PHONE", "RECORD_NUMBER", "NATIONAL_ID", "ADDRESS", "EMAIL"}
    ),
}


class Span(Protocol):
    """Anything with a character span: a `Redaction`, a `GoldSpan`."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


@dataclass
class GoldScore:
    """Counts over a set of gold documents; add documents with `add`."""

    direct_types: frozenset[str]
    documents: int = 0
    clean_documents: int = 0  # documents without any gold span
    touched_clean_documents: int = 0  # ... that lost something anyway
    spans: Counter[str] = field(default_factory=Counter)  # gold type -> spans
    removed: Counter[str] = field(default_factory=Counter)  # gold type -> spans removed
    removed_chars: Counter[str] = field(default_factory=Counter)  # redaction kind -> characters
    outside_chars: Counter[str] = field(default_factory=Counter)  # redaction kind -> outside any gold

    def add(self, document: GoldDocument, redactions: Sequence[Redaction]) -> None:
        """Score one document's redactions (spans in its original text)."""
        text = document.text
        visible = np.array([not c.isspace() for c in text], dtype=bool)
        gone = _mask(len(text), redactions)
        gold = _mask(len(text), document.spans)
        self.documents += 1
        if not document.spans:
            self.clean_documents += 1
            self.touched_clean_documents += bool(redactions)
        for span in document.spans:
            chars = visible[span.start : span.end]
            share = gone[span.start : span.end][chars].mean() if chars.any() else 1.0
            self.spans[span.type] += 1
            self.removed[span.type] += bool(share >= REMOVED_SHARE)
        for redaction in redactions:
            chars = visible[redaction.start : redaction.end]
            self.removed_chars[redaction.kind] += int(chars.sum())
            self.outside_chars[redaction.kind] += int((chars & ~gold[redaction.start : redaction.end]).sum())

    def recall(self, types: Iterable[str] | None = None) -> float:
        """Share of gold spans removed, over `types` (default: the direct identifiers)."""
        chosen = self.direct_types if types is None else frozenset(types)
        total = sum(n for t, n in self.spans.items() if t in chosen)
        return sum(n for t, n in self.removed.items() if t in chosen) / total if total else float("nan")

    def damage(self) -> float:
        """Share of all removed characters that were outside every gold span."""
        removed = sum(self.removed_chars.values())
        return sum(self.outside_chars.values()) / removed if removed else 0.0

    def clean_damage(self) -> float:
        """Share of documents without identifiers that lost any character."""
        return self.touched_clean_documents / self.clean_documents if self.clean_documents else 0.0

    def headline(self) -> dict[str, float]:
        return {
            "direct_recall": self.recall(),
            "all_types_recall": self.recall(self.spans),
            "damage": self.damage(),
            "clean_damage": self.clean_damage(),
            "documents": float(self.documents),
        }


def score_documents(
    documents: Iterable[GoldDocument],
    direct_types: Iterable[str],
    redactions_of: Callable[[GoldDocument], Sequence[Redaction]],
) -> GoldScore:
    """Every document's gold spans against what `redactions_of` removed from it."""
    score = GoldScore(frozenset(direct_types))
    for document in documents:
        score.add(document, redactions_of(document))
    return score


def planted_documents(world_dir: Path, split: str) -> list[GoldDocument]:
    """The synthetic world's posts of `split`'s months, with the identifiers its generator planted
    in their bodies as gold spans (types: the generator's kinds, all of them direct identifiers)."""
    planted: dict[str, list[GoldSpan]] = defaultdict(list)
    for row in read_table(world_dir, "identifiers").to_pylist():
        if row["field"] == "body":
            planted[row["case_id"]].append(GoldSpan(row["start"], row["end"], row["kind"]))
    return [
        GoldDocument(c["case_id"], c["body"], c["language"], tuple(planted[c["case_id"]]), split)
        for c in read_table(world_dir, "cases").to_pylist()
        if split_of(c["created_at"]) == split
    ]


def _mask(length: int, spans: Iterable[Span]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(length, dtype=bool)
    for span in spans:
        mask[span.start : span.end] = True
    return mask
