"""A live case index: dense (FAISS) and lexical (BM25) channels over one slot table.

- String case ids; add / upsert / remove; metadata filters applied inside each channel's search.
- Exact search while small, HNSW above a threshold; removal by tombstones (HNSW cannot remove),
  vectors and lexical rows of removed cases overwritten at once, tombstones purged by a rebuild
  (`compact()`, or automatic when they pass `compact_ratio` of the slots or the index outgrows
  exact search).
- Writes cost O(batch) amortised: every array grows in place, the lexical channel is a log of
  small segments merged by size (see `ml.index.lexical`).
- Searches share a read lock and never wait for a rebuild. A rebuild is copy-on-write: new
  channels are filled from the live ones in short steps, on a background thread, while searches
  go on; writes keep going to the live channels (and removals reach the copies too, so nothing
  of a removed case survives anywhere); the last step copies what was written meanwhile and the
  new channels are swapped in under the write lock in a moment.
- Writers and rebuild steps take turns through a gate (writers first); the write lock itself is
  held only while the searchable state changes, not while a write prepares or a merge computes.
- Hybrid retrieval fuses the two channels' rankings by reciprocal rank.
- Saved as a folder with a manifest holding the encoder fingerprint and file checksums.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
from ml.index.lexical import LexicalChannel, LexicalConfig, RowCopy, Segment
from ml.index.slots import CaseMeta, SearchFilter, SlotTable, language_code

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: the lexical channel keeps each row's language; 3: segments of counts
READABLE_FORMATS = (2, 3)  # format 2 snapshots are converted on load
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
    background_rebuild: bool = True  # automatic rebuilds on a thread of their own (else inline)
    rebuild_step_seconds: float = 0.02  # a rebuild step's target length (writers wait about this)


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
        self._lock = rwlock.RWLockWrite()  # searches read; changes to what they read write
        self._gate = _Gate()  # one writer or rebuild step at a time, writers first
        self._rebuild: _Rebuild | None = None
        self._thread: threading.Thread | None = None
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
                "rebuilding": self._rebuild is not None,
            }

    def nbytes(self) -> int:
        """Approximate memory held by the index (vectors, graph, lexical matrix, slot table)."""
        return sum(self.nbytes_by_part().values())

    def nbytes_by_part(self) -> dict[str, int]:
        """`nbytes` split into the dense channel, the lexical channel and the slot table, plus
        the channels a rebuild is filling (while one runs)."""
        with self._gate.writer():  # no write or rebuild step changes anything meanwhile
            parts = {
                "dense": self._dense.nbytes(),
                "lexical": self._lexical.nbytes(),
                "slots": self._slots.nbytes(),
            }
            if self._rebuild is not None:
                parts["rebuild"] = self._rebuild.nbytes()
            return parts

    def set_ef_search(self, ef_search: int) -> None:
        """HNSW search breadth: higher is more accurate and slower (no effect on exact search)."""
        with self._gate.writer(), self._lock.gen_wlock():
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
        metas = [c.meta for c in cases]
        # the texts' analysis needs no state: done before queueing for the gate
        batch = self._lexical.prepare([c.text for c in cases], [language_code(m.language) for m in metas])
        with self._gate.writer():
            self._help_rebuild()
            replaced = self._slots.live_slots(ids)
            located = self._before_erasing(replaced)
            with self._lock.gen_wlock():
                self._erase(self._slots.tombstone(ids), located)
                self._slots.append(ids, metas)
                self._dense.add(vectors)
                self._lexical.append(batch)
            self._merge_lexical()
            self._maintain()

    def update_meta(self, case_id: str, meta: CaseMeta) -> bool:
        """Change a case's metadata (e.g. resolved) without re-adding it; False if absent."""
        with self._gate.writer(), self._lock.gen_wlock():
            if not self._slots.update_meta(case_id, meta):
                return False
            self._lexical.set_language(self._slots.slot_of[case_id], language_code(meta.language))
            return True

    def remove(self, case_ids: Sequence[str]) -> int:
        """Remove cases from every later result; returns how many were present."""
        ids = list(dict.fromkeys(case_ids))
        with self._gate.writer():
            self._help_rebuild()
            slots = self._slots.live_slots(ids)
            located = self._before_erasing(slots)
            with self._lock.gen_wlock():
                self._erase(self._slots.tombstone(ids), located)
            self._maintain()
            return len(slots)

    def compact(self) -> None:
        """Drop tombstones for good, and switch exact <-> HNSW by size; returns once done.

        Searches go on meanwhile (as do writes, between the rebuild's steps)."""
        self._drive(self._rebuild)  # one under way started from an older state: finish it first
        with self._gate.writer():
            rebuild = self._rebuild if self._rebuild is not None else self._start_rebuild()
        self._drive(rebuild)

    def wait_for_rebuild(self, timeout: float | None = None) -> bool:
        """Wait until no rebuild is under way (automatic ones run on a thread); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (thread := self._thread) is not None and thread.is_alive():
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
            if deadline is not None and time.monotonic() >= deadline:
                return not thread.is_alive() and self._rebuild is None
        return self._rebuild is None

    def _maintain(self) -> None:
        """Start a rebuild when tombstones pile up or the index outgrows exact search (gate held)."""
        if self._rebuild is not None:
            return
        tombstones = len(self._slots) - self._slots.live_count
        if tombstones > self.config.compact_ratio * max(len(self._slots), 1) or self._dense.needs_upgrade():
            rebuild = self._start_rebuild()
            if not self.config.background_rebuild:
                while not rebuild.step(self):
                    pass
                self._finish(rebuild)
                return
            self._thread = threading.Thread(
                target=self._rebuild_in_background, args=(rebuild,), name="case-index-rebuild", daemon=True
            )
            self._thread.start()

    def _start_rebuild(self) -> _Rebuild:
        self._rebuild = _Rebuild(self)
        logger.info("case index rebuild started: %d live cases", self._rebuild.size)
        return self._rebuild

    def _rebuild_in_background(self, rebuild: _Rebuild) -> None:
        try:
            while True:
                if rebuild.lexical_done == rebuild.total(self) and not rebuild.reserved:
                    rebuild.reserve_storage()
                with self._gate.step():
                    if self._rebuild is not rebuild:
                        return  # finished by a `compact()` call
                    if rebuild.step(self):
                        self._finish(rebuild)
                        break
            with self._gate.writer():
                self._maintain()  # tombstones written meanwhile may call for another
        except Exception:
            logger.exception("case index rebuild failed; the live index stays as it was")
            with self._gate.writer():
                if self._rebuild is rebuild:
                    self._rebuild = None

    def _drive(self, rebuild: _Rebuild | None) -> None:
        """Run a rebuild's steps on this thread until it is swapped in (each step as a writer)."""
        while rebuild is not None:
            if rebuild.lexical_done == rebuild.total(self) and not rebuild.reserved:
                rebuild.reserve_storage()
            with self._gate.writer():
                if self._rebuild is not rebuild:
                    return
                if rebuild.step(self):
                    self._finish(rebuild)
                    return

    def _help_rebuild(self) -> None:
        """A writer takes a rebuild step when writes outpace the rebuild (gate held)."""
        rebuild = self._rebuild
        if rebuild is not None and rebuild.lagging(self) and rebuild.step(self):
            self._finish(rebuild)

    def _finish(self, rebuild: _Rebuild) -> None:
        """Swap the rebuilt channels in (gate held: nothing was written since the last step)."""
        slots, dense, lexical = rebuild.result(self)
        with self._lock.gen_wlock():
            self._slots, self._dense, self._lexical = slots, dense, lexical
            self._rebuild = None
        logger.info(
            "case index rebuilt in %.1f s: %d cases, %s search", rebuild.seconds(), len(slots), dense.kind
        )

    def _merge_lexical(self) -> None:
        """Merge lexical segments as they come due: computed outside the write lock, swapped in it."""
        while (pair := self._lexical.pending_merge()) is not None:
            merged = self._lexical.merged(pair)
            with self._lock.gen_wlock():
                self._lexical.replace_pair(pair, merged)

    def _before_erasing(self, slots: list[int]) -> list[tuple[Segment, npt.NDArray[np.int64]]]:
        """What erasing these slots needs found first (gate held, no write lock: reads only);
        a rebuild under way erases its copies of them now."""
        if self._rebuild is not None and slots:
            self._rebuild.erase(self, slots)
        return self._lexical.locate(slots)

    def _erase(self, slots: list[int], located: list[tuple[Segment, npt.NDArray[np.int64]]]) -> None:
        """Overwrite removed cases' data, so nothing of them stays in memory or on disk."""
        if not slots:
            return
        self._dense.erase(slots)
        self._lexical.erase(slots, located)

    # --- persistence -----------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the index to `folder` (replacing what was there) with a checksummed manifest.

        Holds the writers' gate, not the read lock: searches go on while the files are written."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._gate.writer():
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
        """Load a saved index, refusing one built by another encoder or with damaged files.

        Format 2 snapshots (before lexical segments) are converted as they load."""
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"no case index in {folder} (manifest.json missing)")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") not in READABLE_FORMATS:
            raise IndexCorruptError(
                f"{folder} holds index format {manifest.get('format')}, expected one of {READABLE_FORMATS}"
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
        try:
            index._lexical = LexicalChannel.load(folder / "lexical.npz", index.config.lexical)
        except ValueError as exc:
            raise IndexCorruptError(f"{folder / 'lexical.npz'}: {exc}") from exc
        with np.load(folder / "slots.npz") as arrays:
            index._slots = SlotTable.from_arrays({key: arrays[key] for key in arrays.files})
        index.watermark = dict(manifest.get("watermark", {}))
        return index


class _Gate:
    """Lets one writer or one rebuild step in at a time; a waiting writer goes before any step."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._holder: int | None = None
        self._writers_waiting = 0

    @contextmanager
    def writer(self) -> Iterator[None]:
        with self._changed:
            if self._holder == threading.get_ident():
                raise RuntimeError("the case index gate is not reentrant")
            self._writers_waiting += 1
            try:
                while self._holder is not None:
                    self._changed.wait()
            finally:
                self._writers_waiting -= 1
            self._holder = threading.get_ident()
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def step(self) -> Iterator[None]:
        with self._changed:
            while self._holder is not None or self._writers_waiting:
                self._changed.wait()
            self._holder = threading.get_ident()
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._changed:
            self._holder = None
            self._changed.notify_all()


class _Rebuild:
    """New channels of the live cases, filled step by step from the index's live channels.

    New slot i holds old slot `keep[i]` for the cases live when the rebuild started, then the
    slots appended since, in order. Every step runs with the gate held, so nothing changes
    under it; removals reach the copies made so far through `erase`.
    """

    lag_limit = 4_096  # appended slots a rebuild may be behind before writers help it along

    def __init__(self, index: CaseIndex) -> None:
        self.started = time.monotonic()
        self.keep = np.flatnonzero(index._slots.live).astype(np.int64)
        self.size = len(self.keep)
        self.snapshot = len(index._slots)  # old slots from here on were appended during the rebuild
        self.new_of_old = np.full(self.snapshot, -1, dtype=np.int64)
        self.new_of_old[self.keep] = np.arange(self.size, dtype=np.int64)
        self.dense = DenseChannel.empty_for(index.dim, index._dense.config, self.size)
        self.lexical = LexicalChannel(index._lexical.config)
        self.dense_done = 0  # new slots [0, dense_done) are in self.dense
        self.lexical_done = 0  # and [0, lexical_done) in self.lexical
        self.erased_tokens = 0  # of rows erased before their lexical copy (the average keeps them)
        self.copy: RowCopy | None = None  # of the lexical rows being copied, from one segment
        self.entries = 1 << 20  # lexical entries per step
        self.chunk = 64  # vectors per step
        self.reserved = False
        self.target = index.config.rebuild_step_seconds

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def total(self, index: CaseIndex) -> int:
        return self.size + len(index._slots) - self.snapshot

    def lagging(self, index: CaseIndex) -> bool:
        """Whether more than `lag_limit` of the slots appended meanwhile wait to be copied."""
        return self.total(index) - max(self.size, min(self.dense_done, self.lexical_done)) > self.lag_limit

    def old_slots(self, start: int, stop: int) -> npt.NDArray[np.int64]:
        """The old slots of new slots [start, stop)."""
        kept = self.keep[start : min(stop, self.size)]
        appended = np.arange(max(start, self.size), stop, dtype=np.int64) - self.size + self.snapshot
        return np.concatenate([kept, appended]) if len(appended) else kept

    def new_slots(self, old: Sequence[int]) -> npt.NDArray[np.int64]:
        old_slots = np.asarray(old, dtype=np.int64)
        appended = old_slots >= self.snapshot
        new = np.where(appended, old_slots - self.snapshot + self.size, 0)
        new[~appended] = self.new_of_old[old_slots[~appended]]
        return new

    def step(self, index: CaseIndex) -> bool:
        """Copy the next chunk; True once everything written so far is copied."""
        total = self.total(index)
        started = time.monotonic()
        if self.lexical_done < total:
            if self.copy is None:  # the rows of the next source segment
                first = int(self.old_slots(self.lexical_done, self.lexical_done + 1)[0])
                source = next(s for s in index._lexical.segments if s.start + s.rows > first)
                stop = self._new_before(source.start + source.rows, total)
                rows = self.old_slots(self.lexical_done, stop)
                languages = index._lexical.language_of(rows)
                self.copy = RowCopy(source, rows, languages, k1=self.lexical.config.k1)
            self.copy.step(self.entries)
            self.entries = self._steer(self.entries, started, 1 << 14, 1 << 26)
            if self.copy.done:
                self.lexical.append_copy(self.copy, index._lexical)
                self.lexical_done += self.copy.rows
                self.copy = None
        elif self.dense_done < total:
            stop = min(self.dense_done + self.chunk, total)
            self.dense.add(index._dense.vectors(self.old_slots(self.dense_done, stop)))
            self.dense_done = stop
            self.chunk = self._steer(self.chunk, started, 16, 1 << 16)
        return self.dense_done == self.lexical_done == self.total(index)

    def reserve_storage(self) -> None:
        """Make room for the vectors before the first is copied, without holding the gate: the
        new channel is nobody else's until then (an erasure touches it only once a vector is
        in), and zero-filling gigabytes would keep writers waiting."""
        if self.dense_done == 0 and not self.reserved:
            self.dense.reserve(self.size)
            self.reserved = True

    def _steer(self, amount: int, started: float, least: int, most: int) -> int:
        """The next step's amount of work, towards the target length (at most twice this one's:
        HNSW inserts slow down as the graph grows)."""
        took = max(time.monotonic() - started, 1e-4)
        return int(np.clip(amount * min(self.target / took, 2.0), least, most))

    def _new_before(self, old_end: int, total: int) -> int:
        """The first new slot whose old slot is >= old_end (or total)."""
        if old_end <= self.snapshot:
            return int(np.searchsorted(self.keep, old_end))
        return min(total, self.size + old_end - self.snapshot)

    def erase(self, index: CaseIndex, old: list[int]) -> None:
        """Removed cases: erase what has been copied of them (before the live channels are)."""
        new = self.new_slots(old)
        copied = new < self.dense_done
        if copied.any():
            self.dense.erase(new[copied].tolist())
        copied = new < self.lexical_done
        if copied.any():
            self.lexical.erase(new[copied])
        if self.copy is not None:
            within = (new >= self.lexical_done) & (new < self.lexical_done + self.copy.rows)
            if within.any():
                self.copy.kill(new[within] - self.lexical_done)
        if (~copied).any():  # their length still counts for the average, as if already copied
            self.erased_tokens += index._lexical.tokens(np.asarray(old, dtype=np.int64)[~copied])

    def result(self, index: CaseIndex) -> tuple[SlotTable, DenseChannel, LexicalChannel]:
        """The rebuilt slot table and channels, up to date (every step done, gate held)."""
        old_of_new = self.old_slots(0, self.total(index))
        table = index._slots.subset(old_of_new)  # metadata as it is now
        now = index._lexical.language_of(old_of_new)
        for slot in np.flatnonzero(self.lexical.language_of(np.arange(len(old_of_new))) != now).tolist():
            self.lexical.set_language(slot, int(now[slot]))  # changed after its row was copied
        self.lexical.count_erased_tokens(self.erased_tokens)
        self.dense.config = index._dense.config  # ef_search may have been set meanwhile
        return table, self.dense, self.lexical

    def nbytes(self) -> int:
        copying = self.copy.nbytes() if self.copy is not None else 0
        return (
            self.dense.nbytes() + self.lexical.nbytes() + copying + self.new_of_old.nbytes + self.keep.nbytes
        )
