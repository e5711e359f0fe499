"""Loaders for the real public corpora in ../shared/data (see its README): never train on `test`."""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from ml.paths import PROJECT_ROOT

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
SPLITS = ("train", "dev", "test")
CORPUS_FILES = {
    "mtsamples": SHARED_DATA / "mtsamples" / "mtsamples_specialties.csv",
    "codiesp": SHARED_DATA / "codiesp" / "codiesp_cases.csv",
    "tico19": SHARED_DATA / "tico19" / "tico19_en_es.tsv",
}


class CorpusMissingError(FileNotFoundError):
    """A corpus file is not where the shared data folder should be."""


@dataclass(frozen=True, slots=True)
class ParallelDoc:
    doc_id: str
    spanish: str
    english: str
    split: str
    label: str  # CodiEsp: the journal's specialty (or "none"); TICO-19: the source document


def _open(relative: str, data_dir: Path) -> Path:
    path = data_dir / relative
    if not path.exists():
        raise CorpusMissingError(
            f"{path} not found: the real corpora live in ../shared/data next to the project "
            "(pass data_dir= to point elsewhere)"
        )
    return path


@dataclass(frozen=True, slots=True)
class LabelledNote:
    doc_id: str
    text: str
    specialties: tuple[str, ...]  # taxonomy codes a correct router may put first
    split: str


def load_mtsamples(split: str, data_dir: Path = SHARED_DATA) -> list[LabelledNote]:
    """MTSamples English transcriptions with their specialty codes (see the corpus README)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} not in {SPLITS}")
    csv.field_size_limit(sys.maxsize)
    with _open("mtsamples/mtsamples_specialties.csv", data_dir).open(newline="", encoding="utf-8") as handle:
        return [
            LabelledNote(row["doc_id"], row["text"], tuple(row["specialties"].split(";")), row["split"])
            for row in csv.DictReader(handle)
            if row["split"] == split
        ]


def load_codiesp(split: str, data_dir: Path = SHARED_DATA) -> list[ParallelDoc]:
    """CodiEsp clinical case reports: Spanish originals and their machine-translated English."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} not in {SPLITS}")
    csv.field_size_limit(sys.maxsize)  # some reports are long
    with _open("codiesp/codiesp_cases.csv", data_dir).open(newline="", encoding="utf-8") as handle:
        return [
            ParallelDoc(row["doc_id"], row["text_es"], row["text_en_mt"], row["split"], row["specialty"])
            for row in csv.DictReader(handle)
            if row["split"] == split
        ]


def load_tico19(data_dir: Path = SHARED_DATA) -> list[ParallelDoc]:
    """TICO-19 English/Spanish sentence pairs (evaluation only: it has no split)."""
    with _open("tico19/tico19_en_es.tsv", data_dir).open(newline="", encoding="utf-8") as handle:
        return [
            ParallelDoc(row["tuid"], row["es"], row["en"], "eval", row["doc"])
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]


DEID_FILES = {
    "meddocan": SHARED_DATA / "deid" / "meddocan.jsonl",
    "physionet": SHARED_DATA / "deid" / "physionet_deid.jsonl",
}
DEID_SPLITS = ("train", "dev")  # the corpora's test documents are held out of the project on purpose


@dataclass(frozen=True, slots=True)
class GoldSpan:
    start: int
    end: int
    type: str  # the corpus's own annotation type, e.g. NOMBRE_PERSONAL_SANITARIO, HCPName


@dataclass(frozen=True, slots=True)
class GoldDocument:
    doc_id: str
    text: str
    language: str
    spans: tuple[GoldSpan, ...]
    split: str


def load_deid_gold(corpus: str, split: str, data_dir: Path = SHARED_DATA) -> list[GoldDocument]:
    """MEDDOCAN (Spanish) or PhysioNet deid (English) documents with their annotators' PHI spans."""
    if corpus not in DEID_FILES:
        raise ValueError(f"corpus {corpus!r} not in {tuple(DEID_FILES)}")
    if split not in DEID_SPLITS:
        raise ValueError(f"split {split!r} not in {DEID_SPLITS}")
    path = _open(str(DEID_FILES[corpus].relative_to(SHARED_DATA)), data_dir)
    documents = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["split"] == split:
                spans = tuple(GoldSpan(s["start"], s["end"], s["type"]) for s in row["spans"])
                documents.append(GoldDocument(row["id"], row["text"], row["language"], spans, split))
    return documents
