"""Lexical channel: BM25 over hashed words and character 4-grams of long words.

Rare exact terms carry much of the signal in medicine ("Fontan", "O157:H7", "ANCA"), and
character n-grams of long words match across spelling and language ("amoxicillin" /
"amoxicilina", "haemolytic" / "hemolítico"). Texts are hashed with scikit-learn's
`HashingVectorizer`, so the channel needs no fitted vocabulary and takes new cases live.

Layout: a large immutable segment in CSC form (fast column lookups for the query's terms) plus
a small CSR segment of recent additions, merged into the large one every `merge_every` rows.
Document frequencies cover every slot ever added until the index is compacted. They are also
kept per language (about 4 MB per language code), because a term's rarity is judged within the
language it belongs to (see `LexicalChannel.search`).
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

from ml.index.slots import LANGUAGES, language_code
from ml.text import fold

LANGUAGE_CODES = len(LANGUAGES)
OTHER_LANGUAGE = language_code("other")

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
        self._languages = np.zeros(0, dtype=np.int8)  # language code per slot
        # document frequencies and live documents per language code, kept as rows come and go
        self.language_df = np.zeros((LANGUAGE_CODES, self.config.n_features), dtype=np.int32)
        self.language_docs = np.zeros(LANGUAGE_CODES, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._main.shape[0]) + self._recent_rows

    def add(self, texts: Sequence[str], languages: npt.ArrayLike | None = None) -> None:
        """Add rows for `texts`; `languages`: their language codes (default: all `OTHER_LANGUAGE`)."""
        counts = self._vectorizer.transform(texts).tocsr().astype(np.float32)
        counts.sum_duplicates()
        codes = np.full(len(texts), OTHER_LANGUAGE, dtype=np.int8)
        if languages is not None:
            codes = np.asarray(languages, dtype=np.int8).reshape(len(texts))
        lengths = np.asarray(counts.sum(axis=1)).ravel().astype(np.float32)
        self._lengths = np.concatenate([self._lengths, lengths])
        self._languages = np.concatenate([self._languages, codes])
        self.df += np.bincount(counts.indices, minlength=self.config.n_features).astype(np.int32)
        self._count_languages(counts, codes, +1)
        self._recent.append(self._bm25_weights(counts, lengths))
        self._recent_rows += counts.shape[0]
        self._recent_stack = None
        if self._recent_rows >= self.config.merge_every:
            self._merge()

    def search(
        self, text: str, allowed: npt.NDArray[np.bool_], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (scores, slots) among `allowed` slots with a positive score.

        With `per_language_df`, a term's document frequency is its highest share of documents
        within any one language: in a mostly English index, everyday Spanish words ("estudios",
        "años") are rare overall and would outweigh the medical terms a Spanish post shares with
        an English case; counted among Spanish posts, they are as common as they are.
        """
        terms = np.unique(self._vectorizer.transform([text]).indices).astype(np.int64)
        df = self._frequencies(terms)
        n = max(len(self), 1)
        useful = (df > 0) & (df <= self.config.max_df_ratio * n)
        terms, df = terms[useful], df[useful]
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        scores = np.zeros(len(self), dtype=np.float32)
        if len(terms):
            main_rows = self._main.shape[0]
            if main_rows:
                scores[:main_rows] = self._main[:, terms] @ idf
            if self._recent_rows:
                scores[main_rows:] = self._recent_matrix()[:, terms] @ idf
        scores[~allowed[: len(scores)]] = 0.0
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return scores[order], order.astype(np.int64)

    def nbytes(self) -> int:
        matrices = [self._main, *self._recent]
        arrays = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in matrices)
        per_language = self.language_df.nbytes + self._languages.nbytes
        return int(arrays + self.df.nbytes + self._lengths.nbytes + per_language)

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
            np.subtract.at(self.language_df, (self._languages[self._main.indices[positions]], features), 1)
            self._main.data[positions] = 0.0
        if in_recent:
            recent = self._recent_matrix()
            for row in in_recent:
                start, end = recent.indptr[row], recent.indptr[row + 1]
                self.df[recent.indices[start:end]] -= 1
                self.language_df[self._languages[main_rows + row], recent.indices[start:end]] -= 1
                recent.data[start:end] = 0.0
            self._recent = [recent]  # the zeroed copy replaces the pieces it was stacked from
        np.subtract.at(self.language_docs, self._languages[np.asarray(slots, dtype=np.int64)], 1)

    def rebuilt(self, keep: npt.NDArray[np.int64]) -> LexicalChannel:
        """A new channel of the kept slots, in order (weights kept as they were computed)."""
        self._merge()
        fresh = LexicalChannel(self.config)
        kept_rows = self._main.tocsr()[keep]
        fresh._main = kept_rows.tocsc()
        fresh._lengths = self._lengths[keep]
        fresh._languages = self._languages[keep]
        fresh.df = np.bincount(kept_rows.indices, minlength=self.config.n_features).astype(np.int32)
        fresh._count_languages(kept_rows, fresh._languages, +1)
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

    def document_share(self, words: Sequence[str]) -> npt.NDArray[np.float64]:
        """For each word, the share of documents that contain it (language-normalised as in `search`)."""
        if not len(words):
            return np.zeros(0)
        terms = self._words.transform([fold(w) for w in words]).indices.astype(np.int64)  # one per word
        return self._frequencies(terms) / max(len(self), 1)

    def set_language(self, slot: int, code: int) -> None:
        """A live row's language changed: move its terms between the per-language frequencies."""
        previous = int(self._languages[slot])
        if previous == code:
            return
        features = self._row_features(slot)
        self.language_df[previous, features] -= 1
        self.language_df[code, features] += 1
        self.language_docs[previous] -= 1
        self.language_docs[code] += 1
        self._languages[slot] = code

    def _frequencies(self, terms: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Document frequencies of `terms`, scaled to the whole index from each big-enough language."""
        df = self.df[terms].astype(np.float64)
        if not self.config.per_language_df:
            return df
        for code in np.flatnonzero(self.language_docs >= self.config.min_language_cases):
            share = self.language_df[code, terms] / self.language_docs[code]
            df = np.maximum(df, share * len(self))
        return df

    def _count_languages(self, rows: sp.csr_matrix, codes: npt.NDArray[np.int8], sign: int) -> None:
        """Add (+1) or remove (-1) these rows' terms and documents to their language's counts."""
        for code in np.unique(codes[codes >= 0]):  # negative: an erased row, counted nowhere
            mine = np.flatnonzero(codes == code)
            features = rows[mine].indices
            self.language_df[code] += sign * np.bincount(features, minlength=self.config.n_features).astype(
                np.int32
            )
            self.language_docs[code] += sign * len(mine)

    def _row_features(self, slot: int) -> npt.NDArray[np.int64]:
        main_rows = int(self._main.shape[0])
        if slot < main_rows:
            positions = np.flatnonzero((self._main.indices == slot) & (self._main.data > 0))
            return np.asarray(np.searchsorted(self._main.indptr, positions, side="right") - 1, dtype=np.int64)
        recent = self._recent_matrix()
        start, end = recent.indptr[slot - main_rows], recent.indptr[slot - main_rows + 1]
        features: npt.NDArray[np.int64] = recent.indices[start:end][recent.data[start:end] > 0].astype(
            np.int64
        )
        return features

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
            languages=self._languages,
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
            channel._languages = arrays["languages"].astype(np.int8)
        # per-language frequencies of the live rows (erased rows hold zeros and count for nothing)
        live = channel._main.tocsr()
        live.eliminate_zeros()
        erased = np.asarray(live.getnnz(axis=1) == 0) & (channel._lengths > 0)
        codes = np.where(erased, -1, channel._languages).astype(np.int8)
        channel._count_languages(live, codes, +1)
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
