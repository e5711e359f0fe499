"""The real public corpora, vendored in data/corpora as zstd Parquet (see its README): never train on `test`.

They were copied from ../shared/data by `casematch vendor-corpora` with their fixed splits, so a
clone with nothing beside it trains and is gated on the same real data.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ml.hashing import sha256_file
from ml.paths import PROJECT_ROOT

CORPORA_DIR = PROJECT_ROOT / "data" / "corpora"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"  # only where `casematch vendor-corpora` copies from
SPLITS = ("train", "dev", "test")
DEID_SPLITS = ("train", "dev")  # the de-identification corpora's test documents are held out on purpose
DEID_CORPORA = ("meddocan", "physionet")
CORPUS_NAMES = ("mtsamples", "codiesp", "tico19", *DEID_CORPORA)
CORPUS_FILES = {name: CORPORA_DIR / f"{name}.parquet" for name in CORPUS_NAMES}


class CorpusMissingError(FileNotFoundError):
    """A vendored corpus file is not in its folder."""


@dataclass(frozen=True, slots=True)
class ParallelDoc:
    doc_id: str
    spanish: str
    english: str
    split: str
    label: str  # CodiEsp: the journal's specialty (or "none"); TICO-19: the source document


@dataclass(frozen=True, slots=True)
class LabelledNote:
    doc_id: str
    text: str
    specialties: tuple[str, ...]  # taxonomy codes a correct router may put first
    split: str


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


def _columns(
    corpus: str, columns: list[str], split: str | None, data_dir: Path, splits: tuple[str, ...] = SPLITS
) -> Iterator[tuple[object, ...]]:
    """The named columns of one corpus, row by row, restricted to one split when given."""
    if split is not None and split not in splits:
        raise ValueError(f"split {split!r} not in {splits}")
    path = data_dir / CORPUS_FILES[corpus].name
    if not path.exists():
        raise CorpusMissingError(
            f"{path} not found: the real corpora are vendored in data/corpora "
            "(rebuild them from ../shared/data with `casematch vendor-corpora`)"
        )
    filters = [("split", "=", split)] if split is not None else None
    table = pq.read_table(path, columns=columns, filters=filters)
    yield from zip(*(table.column(name).to_pylist() for name in columns), strict=True)


def load_mtsamples(split: str, data_dir: Path = CORPORA_DIR) -> list[LabelledNote]:
    """MTSamples English transcriptions with their specialty codes (see the corpus README)."""
    return [
        LabelledNote(str(doc_id), str(text), tuple(str(codes).split(";")), split)
        for doc_id, text, codes in _columns("mtsamples", ["doc_id", "text", "specialties"], split, data_dir)
    ]


def load_codiesp(split: str, data_dir: Path = CORPORA_DIR) -> list[ParallelDoc]:
    """CodiEsp clinical case reports: Spanish originals and their machine-translated English."""
    return [
        ParallelDoc(str(doc_id), str(spanish), str(english), split, str(specialty))
        for doc_id, spanish, english, specialty in _columns(
            "codiesp", ["doc_id", "text_es", "text_en_mt", "specialty"], split, data_dir
        )
    ]


def load_tico19(data_dir: Path = CORPORA_DIR) -> list[ParallelDoc]:
    """TICO-19 English/Spanish sentence pairs (evaluation only: it has no split)."""
    return [
        ParallelDoc(str(tuid), str(spanish), str(english), "eval", str(doc))
        for tuid, spanish, english, doc in _columns("tico19", ["tuid", "es", "en", "doc"], None, data_dir)
    ]


def load_deid_gold(corpus: str, split: str, data_dir: Path = CORPORA_DIR) -> list[GoldDocument]:
    """MEDDOCAN (Spanish) or PhysioNet deid (English) documents with their annotators' PHI spans."""
    if corpus not in DEID_CORPORA:
        raise ValueError(f"corpus {corpus!r} not in {DEID_CORPORA}")
    rows = _columns(corpus, ["id", "text", "language", "spans"], split, data_dir, DEID_SPLITS)
    return [
        GoldDocument(
            str(doc_id),
            str(text),
            str(language),
            tuple(GoldSpan(s["start"], s["end"], s["type"]) for s in spans),  # type: ignore[attr-defined]
            split,
        )
        for doc_id, text, language, spans in rows
    ]


# --- vendoring -----------------------------------------------------------------------------------

# Where each vendored file comes from in ../shared/data, and the columns it keeps.
_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "mtsamples": (
        "mtsamples/mtsamples_specialties.csv",
        ("doc_id", "split", "specialties", "source_labels", "sample_name", "text"),
    ),
    "codiesp": (
        "codiesp/codiesp_cases.csv",
        ("doc_id", "codiesp_part", "split", "issn", "journal", "specialty", "text_es", "text_en_mt"),
    ),
    "tico19": ("tico19/tico19_en_es.tsv", ("tuid", "doc", "source_url", "en", "es")),
    "meddocan": ("deid/meddocan.jsonl", ("id", "split", "language", "text", "spans")),
    "physionet": ("deid/physionet_deid.jsonl", ("id", "split", "language", "text", "spans")),
}


def _read_source(path: Path, columns: tuple[str, ...]) -> pa.Table:
    csv.field_size_limit(sys.maxsize)  # some reports are long
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in handle]
            if any(row["split"] not in DEID_SPLITS for row in rows):
                raise ValueError(f"{path} holds a split beyond {DEID_SPLITS}: it must not be vendored")
        elif path.suffix == ".tsv":
            rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        else:
            rows = list(csv.DictReader(handle))
    return pa.Table.from_pylist([{name: row[name] for name in columns} for row in rows])


def vendor_corpora(source_dir: Path = SHARED_DATA, out_dir: Path = CORPORA_DIR) -> dict[str, int]:
    """Copy every corpus from ../shared/data into zstd Parquet; a manifest keeps the sources' SHA-256."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counts, manifest = {}, {}
    for name, (relative, columns) in _SOURCES.items():
        source = source_dir / relative
        if not source.exists():
            raise CorpusMissingError(f"{source} not found: nothing to vendor {name} from")
        table = _read_source(source, columns)
        pq.write_table(table, out_dir / f"{name}.parquet", compression="zstd", compression_level=19)
        counts[name] = table.num_rows
        manifest[name] = {"source": relative, "source_sha256": sha256_file(source), "rows": table.num_rows}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return counts
