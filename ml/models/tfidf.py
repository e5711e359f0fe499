"""TF-IDF rows for several fitted vectorizers, analysing each text once per kind of analysis.

The specialty router and the urgency model both read word 1-2-grams and character 3-5-grams of
the same post. scikit-learn's `transform` splits the text into n-grams again for each
vectorizer, and that pure-Python step was most of a route call's model time. `SharedAnalysis`
splits once per distinct analyser and looks the n-grams up in each vocabulary; the result is
the same matrix `vectorizer.transform` gives (a unit test holds it to that).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

Analyzer = Callable[[str], list[str]]


class SharedAnalysis:
    def __init__(self, vectorizers: Sequence[TfidfVectorizer]) -> None:
        self.vectorizers = list(vectorizers)
        groups: dict[Hashable, list[int]] = {}  # analysis -> the vectorizers (by position) that use it
        for position, vectorizer in enumerate(self.vectorizers):
            groups.setdefault(_analysis_key(vectorizer), []).append(position)
        self._groups = [_Group(self.vectorizers, positions) for positions in groups.values()]

    def transform(self, texts: Sequence[str]) -> list[sp.csr_matrix]:
        """One matrix per vectorizer, equal to `vectorizer.transform(texts)`."""
        counts: list[sp.csr_matrix] = [sp.csr_matrix((0, 0))] * len(self.vectorizers)
        for group in self._groups:
            for position, matrix in zip(group.positions, group.counts(texts), strict=True):
                counts[position] = matrix
        return [_tfidf(v, c) for v, c in zip(self.vectorizers, counts, strict=True)]


class _Group:
    """Vectorizers that split text alike: one analysis and one vocabulary look-up per n-gram for all."""

    def __init__(self, vectorizers: Sequence[TfidfVectorizer], positions: list[int]) -> None:
        self.positions = positions
        self.analyze: Analyzer = vectorizers[positions[0]].build_analyzer()
        self.widths = [len(vectorizers[p].vocabulary_) for p in positions]
        self.ids: dict[str, int] = {}  # n-gram -> row of `columns`
        for position in positions:
            for gram in vectorizers[position].vocabulary_:
                self.ids.setdefault(gram, len(self.ids))
        # each n-gram's column in each vectorizer, -1 where that vocabulary lacks it
        self.columns = np.full((len(self.ids), len(positions)), -1, dtype=np.int64)
        for slot, position in enumerate(positions):
            vocabulary = vectorizers[position].vocabulary_
            self.columns[[self.ids[g] for g in vocabulary], slot] = list(vocabulary.values())

    def counts(self, texts: Sequence[str]) -> list[sp.csr_matrix]:
        """Term counts of `texts` in each vectorizer's vocabulary."""
        per_text = []
        for text in texts:
            ids = np.array([self.ids.get(gram, -1) for gram in self.analyze(text)], dtype=np.int64)
            known, n = np.unique(ids[ids >= 0], return_counts=True)
            per_text.append((self.columns[known], n))
        return [
            _sparse([(columns[:, slot], n) for columns, n in per_text], (len(texts), width))
            for slot, width in enumerate(self.widths)
        ]


def _sparse(
    per_text: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]], shape: tuple[int, int]
) -> sp.csr_matrix:
    """CSR counts from each text's (columns, counts), where a column of -1 is not in the vocabulary."""
    indptr, indices, data = [0], [], []
    for columns, n in per_text:
        keep = columns >= 0
        order = np.argsort(columns[keep], kind="stable")
        indices.append(columns[keep][order])
        data.append(n[keep][order].astype(np.float64))
        indptr.append(indptr[-1] + int(keep.sum()))
    empty = np.zeros(0, dtype=np.int64)
    return sp.csr_matrix(
        (np.concatenate([empty.astype(np.float64), *data]), np.concatenate([empty, *indices]), indptr),
        shape=shape,
    )


def _analysis_key(vectorizer: TfidfVectorizer) -> Hashable:
    """Vectorizers with equal keys split a text into the same n-grams."""
    params = vectorizer.get_params()
    names = ("analyzer", "ngram_range", "lowercase", "strip_accents", "token_pattern", "preprocessor")
    stop_words = params["stop_words"]
    return (
        *(params[name] for name in names),
        params["tokenizer"],
        tuple(sorted(stop_words)) if isinstance(stop_words, list | set | frozenset) else stop_words,
    )


def _tfidf(vectorizer: TfidfVectorizer, counts: sp.csr_matrix) -> sp.csr_matrix:
    """What `vectorizer.transform` makes of term counts, on the stored values (no sparse algebra)."""
    data = counts.data.copy()
    if vectorizer.binary:
        data[:] = 1
    if vectorizer.sublinear_tf:
        np.log(data, out=data)
        data += 1
    if vectorizer.use_idf:
        data *= vectorizer.idf_[counts.indices]
    if vectorizer.norm:
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        magnitude = np.abs(data) if vectorizer.norm == "l1" else data**2
        totals = np.bincount(rows, weights=magnitude, minlength=counts.shape[0])
        totals = totals if vectorizer.norm == "l1" else np.sqrt(totals)
        totals[totals == 0] = 1  # an empty row stays empty
        data /= totals[rows]
    return sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)
