"""The live case index: dense + lexical retrieval over string case ids."""

import faiss

from ml.index.case_index import CaseIndex, Hit, IndexConfig, IndexCorruptError, IndexedCase
from ml.index.dense import DenseConfig
from ml.index.lexical import LexicalConfig
from ml.index.slots import CaseMeta, SearchFilter


def set_search_threads(threads: int) -> None:
    """Bound FAISS's OpenMP threads, so it does not oversubscribe cores shared with the encoder."""
    faiss.omp_set_num_threads(max(1, threads))


__all__ = [
    "CaseIndex",
    "CaseMeta",
    "DenseConfig",
    "Hit",
    "IndexConfig",
    "IndexCorruptError",
    "IndexedCase",
    "LexicalConfig",
    "SearchFilter",
    "set_search_threads",
]
