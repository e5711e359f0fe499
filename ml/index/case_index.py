"""A live case index: dense (FAISS) and lexical (BM25) channels over one slot table.

- String case ids; add / upsert / remove; metadata filters applied inside each channel's search.
- Exact search while small, HNSW above a threshold; removal by tombstones (HNSW cannot remove),
  vectors of removed cases zeroed at once, tombstones purged by `compact()` (automatic when they
  pass `compact_ratio` of the slots).
- Searches share a read lock; writes take the write lock (`readerwriterlock`, writer-preferring,
  so a stream of searches cannot starve ingest).
- Hybrid retrieval fuses the two channels' rankings by reciprocal rank.
- Saved as a folder with a manifest holding the encoder fingerprint and file checksums.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from readerwriterlock import rwlock

from ml.embeddings.base import FingerprintMismatchError, Vectors, l2_normalise
from ml.hashing import sha256_file
from ml.index.dense import DenseChannel, DenseConfig
from ml.index.lexical import LexicalChannel, LexicalConfig
from ml.index.slots import CaseMeta, SearchFilter, SlotTable, language_code

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: the lexical channel keeps each row's language
Mode = Literal["hybrid", "dense", "lexical"]
_FILES = ("dense.faiss", "lexical.npz", "slots.npz")


@dataclass(frozen=True)
class IndexConfig:
    dense: DenseConfig = field(default_factory=DenseConfig)
    lexical: LexicalConfig = field(default_factory=LexicalConfig)
    compact_ratio: float = 0.25  # compact once this share of slots are tombstones
    rrf_k: int = 60
    lexical_weight: float = 1.0  # weight of the lexical ranking in the fusion
    candidates: int = 100  # per channel, before fusion


@dataclass(frozen=True, slots=True)
class IndexedCase:
    case_id: str
    vector: Vectors  # (dim,), L2-normalised
    text: str  # de-identified text for the lexical channel
    meta: CaseMeta


@dataclass(frozen=True, slots=True)
class Hit:
    case_id: str
    score: float  # fused score (hybrid) or the channel's own score
    dense_score: float | None
    lexical_score: float | None


class IndexCorruptError(ValueError):
    """A saved index whose files do not match its manifest."""


class CaseIndex:
    def __init__(self, *, dim: int, fingerprint: str, config: IndexConfig | None = None) -> None:
        self.dim = dim
        self.fingerprint = fingerprint
        self.config = config or IndexConfig()
        self._slots = SlotTable()
        self._dense = DenseChannel(dim, self.config.dense)
        self._lexical = LexicalChannel(self.config.lexical)
        self._lock = rwlock.RWLockWrite()
        self.watermark: dict[str, Any] = {}  # free-form, saved with the index (e.g. last ingest time)

    # --- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._slots.live_count

    def __contains__(self, case_id: object) -> bool:
        with self._lock.gen_rlock():
            return case_id in self._slots.slot_of

    def vectors(self, case_ids: Sequence[str]) -> dict[str, Vectors]:
        """The stored vectors of the live cases among `case_ids` (absent ids are left out)."""
        with self._lock.gen_rlock():
            live = [case_id for case_id in case_ids if case_id in self._slots.slot_of]
            if not live:
                return {}
            slots = np.array([self._slots.slot_of[case_id] for case_id in live], dtype=np.int64)
            return dict(zip(live, self._dense.vectors(slots), strict=True))

    @property
    def kind(self) -> str:
        return self._dense.kind

    def stats(self) -> dict[str, Any]:
        with self._lock.gen_rlock():
            return {
                "cases": self._slots.live_count,
                "slots": len(self._slots),
                "tombstones": len(self._slots) - self._slots.live_count,
                "dense": self._dense.kind,
                "fingerprint": self.fingerprint,
            }

    def nbytes(self) -> int:
        """Approximate memory held by the index (vectors, graph, lexical matrix, slot table)."""
        return sum(self.nbytes_by_part().values())

    def nbytes_by_part(self) -> dict[str, int]:
        """`nbytes` split into the dense channel, the lexical channel and the slot table."""
        with self._lock.gen_rlock():
            return {
                "dense": self._dense.nbytes(),
                "lexical": self._lexical.nbytes(),
                "slots": self._slots.nbytes(),
            }

    def set_ef_search(self, ef_search: int) -> None:
        """HNSW search breadth: higher is more accurate and slower (no effect on exact search)."""
        with self._lock.gen_wlock():
            self._dense.config = replace(self._dense.config, ef_search=ef_search)

    def search(
        self,
        query_vector: Vectors,
        query_text: str,
        *,
        k: int = 10,
        search_filter: SearchFilter | None = None,
        mode: Mode = "hybrid",
        language: str | None = None,
        other_languages: int = 0,
    ) -> list[Hit]:
        """The k best cases. With the query's `language`, at least `other_languages` of them are in
        another language whenever the fused candidates hold any: a doctor should see the English
        report of their Spanish case even when Spanish cases of the same condition fill the top.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        hits, _ = self._search(query_vector, query_text, k, search_filter, mode, language, other_languages, 0)
        return hits

    def search_with_neighbours(
        self,
        query_vector: Vectors,
        query_text: str,
        *,
        k: int,
        neighbours: int,
        search_filter: SearchFilter | None = None,
        language: str | None = None,
        other_languages: int = 0,
    ) -> tuple[list[Hit], list[Hit]]:
        """`search` (hybrid; k may be 0), and the `neighbours` nearest cases by the dense channel
        alone, from one pass over the vectors (a routing call needs both: similar cases, and
        neighbours whose answerers and similarities feed the doctor ranker and novelty)."""
        return self._search(
            query_vector, query_text, k, search_filter, "hybrid", language, other_languages, neighbours
        )

    def _search(
        self,
        query_vector: Vectors,
        query_text: str,
        k: int,
        search_filter: SearchFilter | None,
        mode: Mode,
        language: str | None,
        other_languages: int,
        neighbours: int,
    ) -> tuple[list[Hit], list[Hit]]:
        query = l2_normalise(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
        if query.shape[0] != self.dim:
            raise ValueError(f"query vector has dimension {query.shape[0]}, the index {self.dim}")
        with self._lock.gen_rlock():
            allowed = self._slots.allowed(search_filter or SearchFilter())
            depth = k if mode != "hybrid" else max(k, self.config.candidates, neighbours)
            dense: dict[int, float] = {}
            lexical: dict[int, float] = {}
            if mode in ("hybrid", "dense"):
                scores, slots = self._dense.search(query, allowed, depth)
                dense = dict(zip(slots.tolist(), scores.tolist(), strict=True))
            if mode in ("hybrid", "lexical"):
                scores, slots = self._lexical.search(query_text, allowed, depth)
                lexical = dict(zip(slots.tolist(), scores.tolist(), strict=True))
            ranked = self._rank(dense, lexical, mode)
            if language is not None and other_languages:
                ranked = self._with_other_languages(ranked, k, language_code(language), other_languages)
            hits = [
                Hit(self._slots.case_ids[slot], score, dense.get(slot), lexical.get(slot))
                for slot, score in ranked[:k]
            ]
            # the dense channel returns its hits best first, so its first ones are the neighbours
            nearest = [
                Hit(self._slots.case_ids[slot], score, score, lexical.get(slot))
                for slot, score in islice(dense.items(), neighbours)
            ]
            return hits, nearest

    def _with_other_languages(
        self, ranked: list[tuple[int, float]], k: int, own: int, wanted: int
    ) -> list[tuple[int, float]]:
        """The top k of `ranked`, the last own-language ones swapped for the best others if needed."""
        top = ranked[:k]
        foreign = [entry for entry in ranked if self._slots.language[entry[0]] != own]
        missing = min(wanted, k) - sum(1 for slot, _ in top if self._slots.language[slot] != own)
        extra = [entry for entry in foreign if entry not in top][: max(missing, 0)]
        for entry in extra:
            last_own = max(i for i, (slot, _) in enumerate(top) if self._slots.language[slot] == own)
            del top[last_own]
            top.append(entry)
        return top

    def document_share(self, words: Sequence[str]) -> npt.NDArray[np.float64]:
        """Share of the cases that contain each (whole, folded) word, normalised per language."""
        with self._lock.gen_rlock():
            return self._lexical.document_share(words)

    def _rank(
        self, dense: dict[int, float], lexical: dict[int, float], mode: Mode
    ) -> list[tuple[int, float]]:
        if mode == "dense":
            return sorted(dense.items(), key=lambda item: -item[1])
        if mode == "lexical":
            return sorted(lexical.items(), key=lambda item: -item[1])
        fused: dict[int, float] = {}
        rrf_k, weight = self.config.rrf_k, self.config.lexical_weight
        for rank, slot in enumerate(sorted(dense, key=lambda s: -dense[s])):
            fused[slot] = fused.get(slot, 0.0) + 1.0 / (rrf_k + rank + 1)
        for rank, slot in enumerate(sorted(lexical, key=lambda s: -lexical[s])):
            fused[slot] = fused.get(slot, 0.0) + weight / (rrf_k + rank + 1)
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))

    # --- writing ---------------------------------------------------------------------------------

    def upsert(self, cases: Sequence[IndexedCase]) -> None:
        """Add cases, replacing any with the same id (the old version disappears at once)."""
        if not cases:
            return
        ids = [c.case_id for c in cases]
        if len(set(ids)) != len(ids):
            raise ValueError("the same case id appears twice in one upsert")
        vectors = l2_normalise(np.stack([np.asarray(c.vector, dtype=np.float32) for c in cases]))
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index {self.dim}")
        with self._lock.gen_wlock():
            self._erase_vectors(self._slots.tombstone(ids))
            self._slots.append(ids, [c.meta for c in cases])
            self._dense.add(vectors)
            self._lexical.add([c.text for c in cases], [language_code(c.meta.language) for c in cases])
            self._maintain()

    def update_meta(self, case_id: str, meta: CaseMeta) -> bool:
        """Change a case's metadata (e.g. resolved) without re-adding it; False if absent."""
        with self._lock.gen_wlock():
            if not self._slots.update_meta(case_id, meta):
                return False
            self._lexical.set_language(self._slots.slot_of[case_id], language_code(meta.language))
            return True

    def remove(self, case_ids: Sequence[str]) -> int:
        """Remove cases from every later result; returns how many were present."""
        with self._lock.gen_wlock():
            slots = self._slots.tombstone(list(case_ids))
            self._erase_vectors(slots)
            self._maintain()
            return len(slots)

    def compact(self) -> None:
        """Drop tombstones for good, and switch exact <-> HNSW by size."""
        with self._lock.gen_wlock():
            self._compact()

    def _maintain(self) -> None:
        tombstones = len(self._slots) - self._slots.live_count
        if tombstones > self.config.compact_ratio * max(len(self._slots), 1) or self._dense.needs_upgrade():
            self._compact()

    def _compact(self) -> None:
        table, keep = self._slots.compacted()
        self._dense = self._dense.rebuilt(keep)
        self._lexical = self._lexical.rebuilt(keep)
        self._slots = table
        logger.info("compacted case index: %d cases, %s search", len(table), self._dense.kind)

    def _erase_vectors(self, slots: list[int]) -> None:
        """Overwrite removed cases' data with zeros, so nothing of them stays in memory or on disk."""
        if not slots:
            return
        self._dense.erase(slots)
        self._lexical.erase(slots)

    # --- persistence -----------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the index to `folder` (replacing what was there) with a checksummed manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock.gen_rlock():
            self._dense.save(folder / "dense.faiss")
            self._lexical.save(folder / "lexical.npz")
            np.savez(folder / "slots.npz", **self._slots.to_arrays())
            manifest = {
                "format": FORMAT_VERSION,
                "fingerprint": self.fingerprint,
                "dim": self.dim,
                "cases": self._slots.live_count,
                "watermark": self.watermark,
                "sha256": {name: sha256_file(folder / name) for name in _FILES},
            }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        expected_fingerprint: str,
        config: IndexConfig | None = None,
        mmap: bool = False,
    ) -> CaseIndex:
        """Load a saved index, refusing one built by another encoder or with damaged files."""
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"no case index in {folder} (manifest.json missing)")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexCorruptError(
                f"{folder} holds index format {manifest.get('format')}, expected {FORMAT_VERSION}"
            )
        if manifest["fingerprint"] != expected_fingerprint:
            raise FingerprintMismatchError(
                expected=manifest["fingerprint"],
                actual=expected_fingerprint,
                what=f"the case index in {folder}",
            )
        for name in _FILES:
            if sha256_file(folder / name) != manifest["sha256"][name]:
                raise IndexCorruptError(f"{folder / name} does not match its checksum in the manifest")
        index = cls(dim=int(manifest["dim"]), fingerprint=manifest["fingerprint"], config=config)
        index._dense = DenseChannel.load(folder / "dense.faiss", index.dim, index.config.dense, mmap=mmap)
        index._lexical = LexicalChannel.load(folder / "lexical.npz", index.config.lexical)
        with np.load(folder / "slots.npz") as arrays:
            index._slots = SlotTable.from_arrays({key: arrays[key] for key in arrays.files})
        index.watermark = dict(manifest.get("watermark", {}))
        return index
