"""Dense channel: FAISS inner-product search over L2-normalised vectors, exact or HNSW."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

from ml.embeddings.base import Vectors

# faiss ships partial SWIG stubs that miss much of its API (selectors, HNSW parameters).
faiss: Any = _faiss


@dataclass(frozen=True)
class DenseConfig:
    """When to go approximate, and how."""

    hnsw_above: int = 50_000  # exact search up to this many slots, HNSW beyond
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128  # recall@10 0.968 at 1M cases, p99 1.85 ms on one core (bench/index.md)
    exact_below_allowed: int = 4_096  # a filter this selective is served exactly, from the subset


class DenseChannel:
    """Vectors at FAISS positions = slots. Deletion is by the caller's tombstone bitmap."""

    def __init__(self, dim: int, config: DenseConfig, index: Any = None) -> None:
        self.dim = dim
        self.config = config
        self.index: Any = index if index is not None else faiss.IndexFlatIP(dim)

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self.index, faiss.IndexHNSWFlat) else "flat"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: Vectors) -> None:
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have dimension {vectors.shape[1]}, the index {self.dim}")
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def search(
        self, query: Vectors, allowed: npt.NDArray[np.bool_], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (scores, slots) among `allowed` slots; slot -1 pads a short result."""
        allowed_count = int(allowed.sum())
        if allowed_count == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        if self.kind == "hnsw" and allowed_count <= self.config.exact_below_allowed:
            return self._exact_subset(query, np.flatnonzero(allowed), k)
        bitmap = np.packbits(allowed, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        params = (
            faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.config.ef_search, k))
            if self.kind == "hnsw"
            else faiss.SearchParameters(sel=selector)
        )
        scores, slots = self.index.search(query.reshape(1, -1), min(k, allowed_count), params=params)
        keep = slots[0] >= 0
        return scores[0][keep], slots[0][keep].astype(np.int64)

    def _exact_subset(
        self, query: Vectors, subset: npt.NDArray[np.int64], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        vectors = self.vectors(subset)
        scores = vectors @ query.reshape(-1)
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order].astype(np.float32), subset[order]

    def nbytes(self) -> int:
        """The bytes of the stored vectors and the HNSW graph (what serialising them would take,
        without doing it: that copies everything)."""
        if self.kind == "flat":
            return int(self.index.codes.size())
        hnsw = self.index.hnsw
        storage = faiss.downcast_index(self.index.storage)
        graph = 4 * hnsw.neighbors.size() + 8 * hnsw.offsets.size() + 4 * hnsw.levels.size()
        tables = 8 * hnsw.assign_probas.size() + 4 * hnsw.cum_nneighbor_per_level.size()
        return int(storage.codes.size() + graph + tables)

    def erase(self, slots: Sequence[int]) -> None:
        """Zero the stored vectors of these slots (the caller has tombstoned them)."""
        flat = self.index.storage if isinstance(self.index, faiss.IndexHNSWFlat) else self.index
        stored = faiss.rev_swig_ptr(faiss.downcast_index(flat).get_xb(), self.index.ntotal * self.dim)
        for slot in slots:
            stored[slot * self.dim : (slot + 1) * self.dim] = 0.0

    def vectors(self, slots: npt.NDArray[np.int64]) -> Vectors:
        return np.asarray(self.index.reconstruct_batch(slots), dtype=np.float32)

    @classmethod
    def empty_for(cls, dim: int, config: DenseConfig, size: int) -> DenseChannel:
        """An empty channel for `size` vectors, exact or HNSW by that size."""
        return cls(dim, config, _new_index(dim, size, config))

    def reserve(self, size: int) -> None:
        """Make room for `size` vectors at once, so that filling the channel in chunks never
        moves what it holds (std::vector keeps its capacity when resized down)."""
        codes = faiss.downcast_index(self.index.storage if self.kind == "hnsw" else self.index).codes
        if codes.size() == 0 and size:
            codes.resize(size * self.dim * 4)
            codes.resize(0)

    def needs_upgrade(self) -> bool:
        return self.kind == "flat" and len(self) > self.config.hnsw_above

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, config: DenseConfig, *, mmap: bool) -> DenseChannel:
        flags = faiss.IO_FLAG_MMAP if mmap else 0
        index = faiss.read_index(str(path), flags)
        if index.d != dim:
            raise ValueError(f"{path} holds {index.d}-d vectors, expected {dim}")
        return cls(dim, config, index)


def _new_index(dim: int, size: int, config: DenseConfig) -> Any:
    if size <= config.hnsw_above:
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = config.ef_construction
    index.hnsw.efSearch = config.ef_search
    return index
