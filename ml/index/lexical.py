"""Lexical channel: BM25 over hashed words and character 4-grams of long words.

Rare exact terms carry much of the signal in medicine ("Fontan", "O157:H7", "ANCA"), and
character n-grams of long words match across spelling and language ("amoxicillin" /
"amoxicilina", "haemolytic" / "hemolítico"). Texts are hashed with scikit-learn's
`HashingVectorizer`, so the channel needs no fitted vocabulary and takes new cases live.

Layout: a large immutable segment in CSC form (fast column lookups for the query's terms) plus
a small CSR segment of recent additions, merged into the large one every `merge_every` rows.
Document frequencies cover every slot ever added until the index is compacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from ml.text import fold

_WORD = re.compile(r"[a-z0-9]+(?:[:/.\-][a-z0-9]+)*")


def analyse(text: str) -> Iterator[str]:
    """Words (lower-case, accents stripped) and the character 4-grams of words of 6+ letters."""
    for word in _WORD.findall(fold(text)):
        yield word
        if len(word) >= 6 and word.isalpha():
            padded = f"<{word}>"
            for i in range(len(padded) - 3):
                yield "#" + padded[i : i + 4]


def _whole_text(text: str) -> list[str]:
    return [text]


@dataclass(frozen=True)
class LexicalConfig:
    n_features: int = 2**20
    k1: float = 1.2
    b: float = 0.75
    max_df_ratio: float = 0.5  # query terms in more documents than this say nothing
    merge_every: int = 2_048
    # Document frequencies normalised per language (see `search`); a language needs at least
    # `min_language_cases` live cases for frequencies of its own.
    per_language_df: bool = True
    min_language_cases: int = 200


class LexicalChannel:
    def __init__(self, config: LexicalConfig | None = None) -> None:
        self.config = config or LexicalConfig()
        self._vectorizer = HashingVectorizer(
            analyzer=analyse, n_features=self.config.n_features, alternate_sign=False, norm=None
        )
        # the same hashing for whole words only: a word's own feature, without its 4-grams
        self._words = HashingVectorizer(
            analyzer=_whole_text, n_features=self.config.n_features, alternate_sign=False, norm=None
        )
        self._main = sp.csc_matrix((0, self.config.n_features), dtype=np.float32)
        self._recent: list[sp.csr_matrix] = []
        self._recent_rows = 0
        self._recent_stack: sp.csr_matrix | None = None
        self.df = np.zeros(self.config.n_features, dtype=np.int32)
        self._lengths = np.zeros(0, dtype=np.float32)  # tokens per slot, for BM25's average length

    def __len__(self) -> int:
        return int(self._main.shape[0]) + self._recent_rows

    def add(self, texts: Sequence[str]) -> None:
        counts = self._vectorizer.transform(texts).tocsr().astype(np.float32)
        counts.sum_duplicates()
        lengths = np.asarray(counts.sum(axis=1)).ravel().astype(np.float32)
        self._lengths = np.concatenate([self._lengths, lengths])
        self.df += np.bincount(counts.indices, minlength=self.config.n_features).astype(np.int32)
        self._recent.append(self._bm25_weights(counts, lengths))
        self._recent_rows += counts.shape[0]
        self._recent_stack = None
        if self._recent_rows >= self.config.merge_every:
            self._merge()

    def search(
        self,
        text: str,
        allowed: npt.NDArray[np.bool_],
        k: int,
        languages: npt.NDArray[np.int8] | None = None,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (scores, slots) among `allowed` slots with a positive score.

        `languages` (a language code per slot, negative for erased slots) turns on
        language-normalised document frequencies:
        in a mostly English index, everyday Spanish words ("estudios", "años") are rare overall and
        would outweigh the medical terms a Spanish post shares with an English case. A term's
        frequency is therefore its highest share of documents within any one language, so a word
        as common as "estudios" is among Spanish posts counts as common.
        """
        terms = np.unique(self._vectorizer.transform([text]).indices).astype(np.int64)
        terms = terms[self.df[terms] > 0]
        columns = self._columns(terms)
        df = self.df[terms].astype(np.float64)
        if languages is not None and self.config.per_language_df:
            df = self._language_normalised_df(columns, df, languages[: len(self)])
        n = max(len(self), 1)
        useful = df <= self.config.max_df_ratio * n
        idf = np.log1p((n - df[useful] + 0.5) / (df[useful] + 0.5)).astype(np.float32)
        scores = np.asarray(columns[:, np.flatnonzero(useful)] @ idf, dtype=np.float32).ravel()
        scores[~allowed[: len(scores)]] = 0.0
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return scores[order], order.astype(np.int64)

    def nbytes(self) -> int:
        matrices = [self._main, *self._recent]
        arrays = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in matrices)
        return int(arrays + self.df.nbytes + self._lengths.nbytes)

    def erase(self, slots: Sequence[int]) -> None:
        """Zero the rows of these slots (the caller has tombstoned them); frequencies drop them too.

        Works in place on both segments, without converting the large one (erasure is a
        per-request path: a DELETE must not cost a rebuild).
        """
        main_rows = int(self._main.shape[0])
        in_main = np.array([s for s in slots if s < main_rows], dtype=np.int64)
        in_recent = [s - main_rows for s in slots if s >= main_rows]
        if len(in_main):
            # CSC: entries are stored by feature; find this slot's entries by their row index.
            positions = np.flatnonzero(np.isin(self._main.indices, in_main))
            features = np.searchsorted(self._main.indptr, positions, side="right") - 1
            np.subtract.at(self.df, features, 1)
            self._main.data[positions] = 0.0
        if in_recent:
            recent = self._recent_matrix()
            for row in in_recent:
                start, end = recent.indptr[row], recent.indptr[row + 1]
                self.df[recent.indices[start:end]] -= 1
                recent.data[start:end] = 0.0
            self._recent = [recent]  # the zeroed copy replaces the pieces it was stacked from

    def rebuilt(self, keep: npt.NDArray[np.int64]) -> LexicalChannel:
        """A new channel of the kept slots, in order (weights kept as they were computed)."""
        self._merge()
        fresh = LexicalChannel(self.config)
        kept_rows = self._main.tocsr()[keep]
        fresh._main = kept_rows.tocsc()
        fresh._lengths = self._lengths[keep]
        fresh.df = np.bincount(kept_rows.indices, minlength=self.config.n_features).astype(np.int32)
        return fresh

    def _bm25_weights(self, counts: sp.csr_matrix, lengths: npt.NDArray[np.float32]) -> sp.csr_matrix:
        # Length normalisation uses the average length known when the row arrives.
        average = float(self._lengths.mean()) if len(self._lengths) else 1.0
        k1, b = self.config.k1, self.config.b
        row_norm = k1 * (1 - b + b * lengths / max(average, 1e-9))
        per_entry = np.repeat(row_norm, np.diff(counts.indptr)).astype(np.float32)
        weighted = counts.copy()
        weighted.data = counts.data * (k1 + 1) / (counts.data + per_entry)
        return weighted

    def document_share(
        self, words: Sequence[str], languages: npt.NDArray[np.int8] | None = None
    ) -> npt.NDArray[np.float64]:
        """For each word, the share of documents that contain it (language-normalised as in `search`)."""
        features = self._words.transform([fold(w) for w in words]).tocsr()
        if not len(words) or not len(self):
            return np.zeros(len(words))
        terms = features.indices.astype(np.int64)  # one feature per word, in order
        df = self.df[terms].astype(np.float64)
        if languages is not None and self.config.per_language_df:
            df = self._language_normalised_df(self._columns(terms), df, languages[: len(self)])
        return np.asarray(df / len(self), dtype=np.float64)

    def _columns(self, terms: npt.NDArray[np.int64]) -> sp.csr_matrix:
        """The BM25 weights of these terms in every slot, (slots, terms)."""
        parts = [self._main[:, terms].tocsr()] if self._main.shape[0] else []
        if self._recent_rows:
            parts.append(self._recent_matrix()[:, terms])
        if not parts:
            return sp.csr_matrix((0, len(terms)), dtype=np.float32)
        return sp.csr_matrix(sp.vstack(parts, format="csr"))

    def _language_normalised_df(
        self, columns: sp.csr_matrix, df: npt.NDArray[np.float64], languages: npt.NDArray[np.int8]
    ) -> npt.NDArray[np.float64]:
        """Each term's highest document share within one language, scaled to the whole index.

        `languages`: a code per slot, negative for erased slots.
        """
        present = columns.copy()
        present.data = (present.data > 0).astype(np.float32)  # erased rows hold zeros
        normalised = df.copy()
        for code in np.unique(languages[languages >= 0]):
            rows = np.flatnonzero(languages == code)
            if len(rows) < self.config.min_language_cases:
                continue  # too few documents for a frequency of their own
            within = np.asarray(present[rows].sum(axis=0)).ravel()
            normalised = np.maximum(normalised, within * len(self) / len(rows))
        return normalised

    def save(self, path: Path) -> None:
        """Write the channel (merged into one segment) to an .npz file."""
        self._merge()
        np.savez(
            path,
            data=self._main.data,
            indices=self._main.indices,
            indptr=self._main.indptr,
            shape=np.array(self._main.shape),
            df=self.df,
            lengths=self._lengths,
        )

    @classmethod
    def load(cls, path: Path, config: LexicalConfig | None = None) -> LexicalChannel:
        channel = cls(config)
        with np.load(path) as arrays:
            shape = tuple(int(x) for x in arrays["shape"])
            if shape[1] != channel.config.n_features:
                raise ValueError(
                    f"{path} hashes into {shape[1]} features, expected {channel.config.n_features}"
                )
            channel._main = sp.csc_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
            channel.df = arrays["df"].astype(np.int32)
            channel._lengths = arrays["lengths"].astype(np.float32)
        return channel

    def _recent_matrix(self) -> sp.csr_matrix:
        if self._recent_stack is None:
            self._recent_stack = sp.vstack(self._recent, format="csr")
        return self._recent_stack

    def _merge(self) -> None:
        if not self._recent_rows:
            return
        self._main = sp.vstack([self._main.tocsr(), self._recent_matrix()], format="csc")
        self._recent, self._recent_rows, self._recent_stack = [], 0, None
