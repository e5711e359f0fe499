"""The live case index: dense + lexical retrieval over string case ids."""

from ml.index.case_index import CaseIndex, Hit, IndexConfig, IndexCorruptError, IndexedCase
from ml.index.dense import DenseConfig
from ml.index.lexical import LexicalConfig
from ml.index.slots import CaseMeta, SearchFilter

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
]
