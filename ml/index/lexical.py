"""Lexical channel: BM25 over hashed words and character 4-grams of long words.

Rare exact terms carry much of the signal in medicine ("Fontan", "O157:H7", "ANCA"), and
character n-grams of long words match across spelling and language ("amoxicillin" /
"amoxicilina", "haemolytic" / "hemolítico"). Texts are hashed with scikit-learn's
`HashingVectorizer`, so the channel needs no fitted vocabulary and takes new cases live.

Layout: rows live in segments of at most `segment_rows` (<= 65,536) consecutive rows, each
stored by feature (fast lookups of the query's terms) and doubly compressed: the features the
segment holds, and for each the run of its rows, as uint16 row numbers within the segment and
raw term counts (uint8 unless a count needs more). About 3 bytes per entry, where a CSC matrix of
float32 weights with int32 rows takes 8.

BM25 weights are computed at query time from a count and its row's length normalisation, which
is fixed when the row arrives (from the average length known then, as before): the float32
arithmetic is the same as when weights were stored, so scores are bit for bit the same.

Each upsert batch becomes a small segment; the last two segments merge while the earlier is no
larger than the later and both fit in one (a binary counter), so a row is copied at most
log2(segment_rows) times and adding b rows costs O(b) amortised, whatever the size of the index.

Document frequencies cover every row ever added until the index is compacted. They are also
kept per language (about 4 MB per language code), because a term's rarity is judged within the
language it belongs to (see `LexicalChannel.search`).

Erasure overwrites a row's entries in place (they point at a phantom row that weighs nothing,
with count 0, so nothing says which row they were), and zeroes its length and normalisation
(the average length keeps counting it until a rebuild, as before); merges and saves drop the
dead entries. Snapshots of format 2 (a CSC matrix of weights) are converted on load.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer

from ml.index.growing import Growing
from ml.index.slots import LANGUAGES, language_code
from ml.text import fold

LANGUAGE_CODES = len(LANGUAGES)
OTHER_LANGUAGE = language_code("other")
MAX_SEGMENT_ROWS = 2**16 - 1  # row numbers within a segment are uint16, and one is the phantom
FORMAT = 3  # of lexical.npz; format 2 was one CSC matrix of float32 weights

_WORD = re.compile(r"[a-z0-9]+(?:[:/.\-][a-z0-9]+)*")
_SLICE_RUNS = 48  # gather a query's postings by slices when runs are longer than this on average
_REBUILD_MERGE_ROWS = 8_192  # a rebuild merges the segments it fills up to this size only

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


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
    # A query's postings to score at most: its rarest terms first, up to this many of their
    # documents, then the rest are left out. They are the commonest terms, which weigh least
    # (a low idf) but cost most (long postings). Below this many postings in all (what a long
    # post meets in an index of up to about 100,000 cases) every term is scored, as before.
    # Chosen at 1,000,000 cases (bench/scale.md): lexical p50 38 ms against 174 ms unbudgeted,
    # 75% of the fused top 10 unchanged, and the same share of the post's condition in it.
    max_postings: int | None = 2_000_000
    segment_rows: int = MAX_SEGMENT_ROWS  # rows per segment at most; full segments merge no more
    # Document frequencies normalised per language (see `search`); a language needs at least
    # `min_language_cases` live cases for frequencies of its own.
    per_language_df: bool = True
    min_language_cases: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.segment_rows <= MAX_SEGMENT_ROWS:
            raise ValueError(f"segment_rows must be in 1..{MAX_SEGMENT_ROWS}, got {self.segment_rows}")


class Segment:
    """Rows [start, start + rows) by feature: `features` (sorted), and for the i-th feature the
    entries colptr[i]:colptr[i + 1] of `row_ids`: first the rows where the term occurs once, then
    those where it occurs more often, whose counts are extra[xptr[i]:xptr[i + 1]]. Rows ascend
    within each part. The row order within a feature does not matter to a score, as each row
    holds a feature once.

    `unit` and `norm` are per row, with one more row at the end (`rows`, the phantom): a dead
    (erased) entry points at it, and weighs 0 whatever its count (unit 0, norm 1, count 0).
    """

    __slots__ = ("colptr", "dead", "extra", "features", "norm", "row_ids", "rows", "start", "unit", "xptr")

    def __init__(
        self,
        rows: int,
        features: npt.NDArray[np.int32],
        colptr: IntArray,
        xptr: IntArray,
        row_ids: npt.NDArray[np.uint16],
        extra: npt.NDArray[np.unsignedinteger[Any]],
        norm: FloatArray,
        *,
        k1: float,
    ) -> None:
        self.start = 0
        self.rows = rows
        self.features = features
        self.colptr = colptr
        self.xptr = xptr
        self.row_ids = row_ids
        self.extra = extra
        self.norm = np.append(np.asarray(norm, dtype=np.float32), np.float32(1.0))
        self.unit = np.float32(k1 + 1) / (1 + self.norm)  # the weight of a term that occurs once
        self.unit[rows] = 0.0
        self.dead = 0

    @property
    def nnz(self) -> int:
        return len(self.row_ids)

    @property
    def nbytes(self) -> int:
        arrays = (self.features, self.colptr, self.xptr, self.row_ids, self.extra, self.norm, self.unit)
        return int(sum(a.nbytes for a in arrays))

    def parts(self, renumber: npt.NDArray[np.int64] | None = None, offset: int = 0) -> _Parts:
        """The live entries as lists by feature index: rows `renumber[row]` (those >= 0) + offset."""
        runs, xruns = np.diff(self.colptr), np.diff(self.xptr)
        once = runs - xruns
        columns = np.arange(len(self.features), dtype=np.int64)
        once_rows = self.row_ids[_ranges(self.colptr[:-1], once)].astype(np.int64)
        more_rows = self.row_ids[_ranges(self.colptr[1:] - xruns, xruns)].astype(np.int64)
        once_columns, more_columns, counts = np.repeat(columns, once), np.repeat(columns, xruns), self.extra
        if renumber is None:
            renumber = np.arange(self.rows + 1, dtype=np.int64)
            renumber[self.rows] = -1
        once_rows, more_rows = renumber[once_rows], renumber[more_rows]
        keep_once, keep_more = once_rows >= 0, more_rows >= 0
        return _Parts(
            once_columns[keep_once],
            once_rows[keep_once] + offset,
            more_columns[keep_more],
            more_rows[keep_more] + offset,
            counts[keep_more],
        )

    def live(self, *, k1: float) -> Segment:
        """This segment without its dead entries (itself when it has none)."""
        if not self.dead:
            return self
        return _assemble(self.rows, self.features, [self.parts()], self.norm[: self.rows], k1=k1)

    def positions_of(self, local_rows: IntArray) -> IntArray:
        """Positions of the live entries of these rows (dead ones point at the phantom row)."""
        if len(local_rows) <= 4:  # a comparison per row beats a table lookup per entry
            hits = [np.flatnonzero(self.row_ids == np.uint16(row)) for row in local_rows]
            return np.sort(np.concatenate(hits)) if len(hits) > 1 else hits[0]
        return np.flatnonzero(np.isin(self.row_ids, local_rows.astype(np.uint16), kind="table"))

    def columns_at(self, positions: IntArray) -> IntArray:
        columns: IntArray = np.searchsorted(self.colptr, positions, side="right") - 1
        return columns

    def kill(self, positions: IntArray) -> None:
        """Overwrite these entries: they point at the phantom row, with count 0."""
        columns = self.columns_at(positions)
        xruns = self.xptr[columns + 1] - self.xptr[columns]
        first_more = self.colptr[columns + 1] - xruns
        more = positions >= first_more
        self.extra[self.xptr[columns[more]] + positions[more] - first_more[more]] = 0
        self.row_ids[positions] = self.rows
        self.dead += len(positions)


@dataclass(frozen=True)
class _Parts:
    """Entries as lists sorted by column (an index into some feature list), then row."""

    once_columns: IntArray
    once_rows: IntArray
    more_columns: IntArray
    more_rows: IntArray
    counts: npt.NDArray[np.unsignedinteger[Any]]


def _count_dtype(largest: int) -> type[np.unsignedinteger[Any]]:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dtype).max:
            return dtype
    raise ValueError(f"a term count of {largest} does not fit in 32 bits")


def _ranges(starts: npt.NDArray[np.integer[Any]], runs: npt.NDArray[np.integer[Any]]) -> IntArray:
    """The positions starts[i] .. starts[i] + runs[i] - 1, run after run."""
    offsets = np.zeros(len(runs) + 1, dtype=np.int64)
    np.cumsum(runs, out=offsets[1:])
    return np.repeat(np.asarray(starts, dtype=np.int64) - offsets[:-1], runs) + np.arange(
        int(offsets[-1]), dtype=np.int64
    )


def _exclusive_cumsum(values: IntArray) -> IntArray:
    out = np.zeros(len(values), dtype=np.int64)
    np.cumsum(values[:-1], out=out[1:])
    return out


def _assemble(
    rows: int, features: npt.NDArray[np.int32], parts: Sequence[_Parts], norm: FloatArray, *, k1: float
) -> Segment:
    """A segment of these parts' entries; within a feature, part after part (rows ascend)."""
    width = len(features)
    once = [np.bincount(p.once_columns, minlength=width) for p in parts]
    more = [np.bincount(p.more_columns, minlength=width) for p in parts]
    once_total = np.zeros(width, dtype=np.int64)
    more_total = np.zeros(width, dtype=np.int64)
    for once_here, more_here in zip(once, more, strict=True):
        once_total += once_here
        more_total += more_here
    total = once_total + more_total
    start = _exclusive_cumsum(total)
    once_cursor, more_cursor, extra_cursor = start.copy(), start + once_total, _exclusive_cumsum(more_total)
    row_ids = np.empty(int(total.sum()), dtype=np.uint16)
    dtype = np.result_type(np.uint8, *(p.counts.dtype for p in parts))
    extra = np.empty(int(more_total.sum()), dtype=dtype)
    for part, once_here, more_here in zip(parts, once, more, strict=True):
        rank = (
            np.arange(len(part.once_rows), dtype=np.int64) - _exclusive_cumsum(once_here)[part.once_columns]
        )
        row_ids[once_cursor[part.once_columns] + rank] = part.once_rows
        rank = (
            np.arange(len(part.more_rows), dtype=np.int64) - _exclusive_cumsum(more_here)[part.more_columns]
        )
        row_ids[more_cursor[part.more_columns] + rank] = part.more_rows
        extra[extra_cursor[part.more_columns] + rank] = part.counts
        once_cursor += once_here
        more_cursor += more_here
        extra_cursor += more_here
    present = np.flatnonzero(total)
    colptr = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(total[present], out=colptr[1:])
    xptr = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(more_total[present], out=xptr[1:])
    if len(extra):
        extra = extra.astype(_count_dtype(int(extra.max())))
    return Segment(rows, features[present], colptr, xptr, row_ids, extra, norm, k1=k1)


def _stack(segments: Sequence[Segment], *, k1: float) -> Segment:
    """One segment of these consecutive segments' live rows (dead entries dropped).

    Within a feature the result holds every segment's once-rows, then every segment's repeated
    ones: each run moves as one block, so this costs a few passes over the entries.
    """
    live = [segment.live(k1=k1) for segment in segments]
    features = np.unique(np.concatenate([segment.features for segment in live]))
    where = [np.searchsorted(features, segment.features) for segment in live]
    once_total = np.zeros(len(features), dtype=np.int64)
    more_total = np.zeros(len(features), dtype=np.int64)
    for segment, at in zip(live, where, strict=True):
        more = np.diff(segment.xptr)
        once_total[at] += np.diff(segment.colptr) - more
        more_total[at] += more
    colptr = np.zeros(len(features) + 1, dtype=np.int64)
    np.cumsum(once_total + more_total, out=colptr[1:])
    xptr = np.zeros(len(features) + 1, dtype=np.int64)
    np.cumsum(more_total, out=xptr[1:])
    row_ids = np.empty(int(colptr[-1]), dtype=np.uint16)
    extra = np.empty(
        int(xptr[-1]), dtype=np.result_type(np.uint8, *(segment.extra.dtype for segment in live))
    )
    once_cursor, more_cursor, extra_cursor = colptr[:-1].copy(), colptr[:-1] + once_total, xptr[:-1].copy()
    position: type[np.signedinteger[Any]] = np.int32 if len(row_ids) < 2**31 else np.int64  # less traffic
    offset = 0
    for segment, at in zip(live, where, strict=True):
        runs, more = np.diff(segment.colptr), np.diff(segment.xptr)
        once = runs - more
        # block starts in the result, once-run then repeated-run of each feature, in source order
        targets = np.stack([once_cursor[at], more_cursor[at]], axis=1).ravel()
        lengths = np.stack([once, more], axis=1).ravel()
        sources = np.stack([segment.colptr[:-1], segment.colptr[:-1] + once], axis=1).ravel()
        moves: npt.NDArray[np.signedinteger[Any]] = np.arange(segment.nnz, dtype=position)
        moves += np.repeat((targets - sources).astype(position), lengths)
        row_ids[moves] = segment.row_ids + np.uint16(offset)
        moves = np.arange(len(segment.extra), dtype=position)
        moves += np.repeat((extra_cursor[at] - segment.xptr[:-1]).astype(position), more)
        extra[moves] = segment.extra
        once_cursor[at] += once
        more_cursor[at] += more
        extra_cursor[at] += more
        offset += segment.rows
    norm = np.concatenate([segment.norm[: segment.rows] for segment in live])
    merged = Segment(offset, features.astype(np.int32), colptr, xptr, row_ids, extra, norm, k1=k1)
    return merged


class RowCopy:
    """Some rows of one segment copied a range of features at a time (a rebuild's steps), so
    that no step scans the whole segment. The layout survives dropping the other rows' entries,
    so each range is a gather and a compress.

    Rows erased while the copy is under way are killed in what has been copied and left out of
    what is still to come (`kill`): the source segment may meanwhile have been merged into
    another in its channel, where the erasure then happens.
    """

    def __init__(
        self, segment: Segment, slots: IntArray, languages: npt.NDArray[np.int8], *, k1: float
    ) -> None:
        self.k1 = k1
        self.segment = segment
        self.slots = slots  # global, ascending, all in `segment`
        self.rows = len(slots)
        # the rows' languages as the copy starts: its frequencies are counted with them, range by
        # range (a later change is the rebuild's to apply); -1 for erased rows and the phantom
        self.languages = np.append(np.asarray(languages, dtype=np.int8), np.int8(-1))
        self._renumber = np.full(segment.rows + 1, -1, dtype=np.int32)
        self._renumber[slots - segment.start] = np.arange(self.rows, dtype=np.int32)
        self._next = 0  # the next feature index of the source to copy
        self._features: list[npt.NDArray[np.int32]] = []
        self._runs: list[IntArray] = []
        self._more: list[IntArray] = []
        self._row_ids: list[npt.NDArray[np.uint16]] = []
        self._extra: list[npt.NDArray[np.unsignedinteger[Any]]] = []
        self._counts: list[npt.NDArray[np.int32]] = []  # per range: (language, feature) documents
        self._dead = 0
        self._killed = np.zeros(self.rows, dtype=bool)

    @property
    def done(self) -> bool:
        return self._next >= len(self.segment.features)

    def step(self, entries: int) -> None:
        """Copy the next features, about `entries` source entries' worth."""
        source = self.segment
        first = self._next
        last = int(np.searchsorted(source.colptr, source.colptr[first] + entries, side="right"))
        last = min(max(last, first + 1), len(source.features))
        lo, hi = int(source.colptr[first]), int(source.colptr[last])
        xlo, xhi = int(source.xptr[first]), int(source.xptr[last])
        renumbered = self._renumber[source.row_ids[lo:hi]]
        keep = renumbered >= 0
        kept = np.zeros(hi - lo + 1, dtype=np.int64)
        np.cumsum(keep, out=kept[1:])
        more_runs = np.diff(source.xptr[first : last + 1])
        more_at = _ranges(source.colptr[first + 1 : last + 1] - lo - more_runs, more_runs)
        keep_more = keep[more_at]
        kept_more = np.zeros(len(keep_more) + 1, dtype=np.int64)
        np.cumsum(keep_more, out=kept_more[1:])
        runs = np.diff(kept[source.colptr[first : last + 1] - lo])
        more = np.diff(kept_more[source.xptr[first : last + 1] - xlo])
        present = runs > 0
        row_ids = renumbered[keep]
        runs, width = runs[present], int(present.sum())
        columns = np.repeat(np.arange(width, dtype=np.int64), runs)
        codes = self.languages[row_ids].astype(np.int64)
        counted = codes >= 0
        pairs = np.bincount(codes[counted] * width + columns[counted], minlength=LANGUAGE_CODES * width)
        self._counts.append(pairs.reshape(LANGUAGE_CODES, width).astype(np.int32))
        self._features.append(source.features[first:last][present])
        self._runs.append(runs)
        self._more.append(more[present])
        self._row_ids.append(row_ids.astype(np.uint16))
        self._extra.append(source.extra[xlo:xhi][keep_more])
        self._next = last

    def kill(self, rows: IntArray) -> None:
        """These rows (numbered within the copy) were erased: overwrite what is copied of them."""
        self._renumber[self.slots[rows] - self.segment.start] = -1
        self._killed[rows] = True
        parts = zip(self._runs, self._more, self._row_ids, self._extra, self._counts, strict=True)
        for runs, more, row_ids, extra, counts in parts:
            positions = np.flatnonzero(np.isin(row_ids, rows.astype(np.uint16)))
            if not len(positions):
                continue
            colptr = np.zeros(len(runs) + 1, dtype=np.int64)
            np.cumsum(runs, out=colptr[1:])
            xptr = np.zeros(len(more) + 1, dtype=np.int64)
            np.cumsum(more, out=xptr[1:])
            columns = np.searchsorted(colptr, positions, side="right") - 1
            first_more = colptr[columns + 1] - more[columns]
            repeated = positions >= first_more
            extra[xptr[columns[repeated]] + positions[repeated] - first_more[repeated]] = 0
            codes = self.languages[row_ids[positions]].astype(np.int64)
            counted = codes >= 0
            np.subtract.at(counts, (codes[counted], columns[counted]), 1)
            row_ids[positions] = self.rows  # the phantom row
            self._dead += len(positions)
        self.languages[rows] = -1

    def nbytes(self) -> int:
        parts: list[npt.NDArray[Any]] = [
            *self._features,
            *self._runs,
            *self._more,
            *self._row_ids,
            *self._extra,
        ]
        return int(self._renumber.nbytes + self._killed.nbytes + sum(part.nbytes for part in parts))

    def counts(self) -> npt.NDArray[np.int32]:
        """Documents per (language, feature) of `result()`'s features, as copied."""
        if not self._counts:
            return np.zeros((LANGUAGE_CODES, 0), dtype=np.int32)
        return np.concatenate(self._counts, axis=1)

    def result(self) -> Segment:
        runs, more = _concatenate(self._runs, np.int64), _concatenate(self._more, np.int64)
        colptr = np.zeros(len(runs) + 1, dtype=np.int64)
        np.cumsum(runs, out=colptr[1:])
        xptr = np.zeros(len(more) + 1, dtype=np.int64)
        np.cumsum(more, out=xptr[1:])
        extra = _concatenate(self._extra, self.segment.extra.dtype)
        norm = self.segment.norm[self.slots - self.segment.start]
        norm[self._killed] = 0.0
        segment = Segment(
            self.rows,
            _concatenate(self._features, np.int32),
            colptr,
            xptr,
            _concatenate(self._row_ids, np.uint16),
            extra,
            norm,
            k1=self.k1,
        )
        segment.dead = self._dead
        return segment


@dataclass(frozen=True)
class Batch:
    """Texts analysed into per-segment entry lists, before they join a channel (no state needed)."""

    pieces: tuple[tuple[int, npt.NDArray[np.int32], _Parts], ...]  # rows, features, entries
    lengths: FloatArray  # tokens per row
    languages: npt.NDArray[np.int8]


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
        self._segments: list[Segment] = []
        self._rows = 0
        self._lengths = Growing(np.float32)  # tokens per row (0 once erased)
        self._languages = Growing(np.int8)  # language code per row (-1 once erased)
        self._length_total = 0  # tokens of every row added (erased ones too), for the average
        self.df = np.zeros(self.config.n_features, dtype=np.int32)
        # document frequencies and live documents per language code, kept as rows come and go
        self.language_df = np.zeros((LANGUAGE_CODES, self.config.n_features), dtype=np.int32)
        self.language_docs = np.zeros(LANGUAGE_CODES, dtype=np.int64)

    def __len__(self) -> int:
        return self._rows

    @property
    def segments(self) -> tuple[Segment, ...]:
        return tuple(self._segments)

    # --- adding ----------------------------------------------------------------------------------

    def add(self, texts: Sequence[str], languages: npt.ArrayLike | None = None) -> None:
        """Add rows for `texts`; `languages`: their language codes (default: all `OTHER_LANGUAGE`)."""
        self.append(self.prepare(texts, languages))
        self.merge_all()

    def prepare(self, texts: Sequence[str], languages: npt.ArrayLike | None = None) -> Batch:
        """Analyse texts; reads nothing of the channel's state, so needs no lock."""
        counts = self._vectorizer.transform(texts).tocsr().astype(np.float32)
        counts.sum_duplicates()
        codes = np.full(len(texts), OTHER_LANGUAGE, dtype=np.int8)
        if languages is not None:
            codes = np.asarray(languages, dtype=np.int8).reshape(len(texts))
        lengths = np.asarray(counts.sum(axis=1)).ravel().astype(np.float32)
        step = self.config.segment_rows
        pieces = tuple(_csr_parts(counts[start : start + step]) for start in range(0, len(texts), step))
        return Batch(pieces, lengths, codes)

    def append(self, batch: Batch) -> None:
        """Add a prepared batch as new rows (merging is left to `pending_merge`)."""
        self._lengths.extend(batch.lengths)
        self._length_total += int(np.rint(batch.lengths.astype(np.float64).sum()))
        # Length normalisation uses the average length known when the row arrives.
        average = self._average_length()
        k1, b = self.config.k1, self.config.b
        norm = (k1 * (1 - b + b * batch.lengths / max(average, 1e-9))).astype(np.float32)
        segments, row = [], 0
        for rows, features, parts in batch.pieces:
            segments.append(_assemble(rows, features, [parts], norm[row : row + rows], k1=k1))
            row += rows
        self._append_segments(segments, batch.languages)

    def _average_length(self) -> float:
        rows = len(self._lengths)
        if not rows:
            return 1.0
        # what numpy's mean of the float32 lengths gives, without reading them: a float32 sum,
        # divided by the count as float64, back to float32 (the same while the total is < 2**24;
        # past that the total here is exact where a float32 running sum was not)
        return float(np.float32(np.float32(self._length_total) / np.intp(rows)))

    def _append_segments(
        self,
        segments: Sequence[Segment],
        languages: npt.NDArray[np.int8],
        *,
        counted: npt.NDArray[np.int32] | None = None,
    ) -> None:
        """New rows, whose lengths are already in `_lengths`; `counted`: one segment's documents
        per (language, feature), when they are known already."""
        self._languages.extend(languages)
        row = 0
        for segment in segments:
            segment.start = self._rows
            codes = np.asarray(languages[row : row + segment.rows], dtype=np.int8)
            if counted is None:
                self._count(segment, codes)
            else:
                self.language_df[:, segment.features] += counted
                self.df[segment.features] += counted.sum(axis=0, dtype=np.int32)
                for code in np.unique(codes[codes >= 0]):
                    self.language_docs[code] += int((codes == code).sum())
            self._segments.append(segment)
            self._rows += segment.rows
            row += segment.rows

    def pending_merge(self, limit: int | None = None) -> int | None:
        """Index i of the segments i, i+1 that should merge next, if any (into at most `limit` rows)."""
        if len(self._segments) < 2:
            return None
        earlier, later = self._segments[-2], self._segments[-1]
        most = self.config.segment_rows if limit is None else min(limit, self.config.segment_rows)
        if earlier.rows <= later.rows and earlier.rows + later.rows <= most:
            return len(self._segments) - 2
        return None

    def merged(self, pair: int) -> Segment:
        """Segments pair and pair+1 as one (reads only: can run while searches do)."""
        first, second = self._segments[pair], self._segments[pair + 1]
        merged = _stack([first, second], k1=self.config.k1)
        merged.start = first.start
        return merged

    def replace_pair(self, pair: int, merged: Segment) -> None:
        self._segments[pair : pair + 2] = [merged]

    def merge_all(self) -> None:
        while (pair := self.pending_merge()) is not None:
            self.replace_pair(pair, self.merged(pair))

    def append_copy(self, copy: RowCopy, source: LexicalChannel) -> None:
        """Append the rows a finished `RowCopy` took from `source` (rebuilds), with the weights,
        lengths and languages they have there now (erased ones: none)."""
        segment = copy.result()
        lengths = source._lengths.values[copy.slots]
        self._lengths.extend(lengths)
        self._length_total += int(np.rint(lengths.astype(np.float64).sum()))
        self._append_segments([segment], copy.languages[: copy.rows], counted=copy.counts())
        # only small neighbours merge here, so that a rebuild step stays short
        while (pair := self.pending_merge(limit=_REBUILD_MERGE_ROWS)) is not None:
            self.replace_pair(pair, self.merged(pair))

    # --- searching -------------------------------------------------------------------------------

    def search(
        self, text: str, allowed: npt.NDArray[np.bool_], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Top-k (scores, slots) among `allowed` slots with a positive score.

        With `per_language_df`, a term's document frequency is its highest share of documents
        within any one language: in a mostly English index, everyday Spanish words ("estudios",
        "años") are rare overall and would outweigh the medical terms a Spanish post shares with
        an English case; counted among Spanish posts, they are as common as they are.
        """
        terms, df = self.query_terms(text)
        n = max(len(self), 1)
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        scores = np.zeros(len(self), dtype=np.float32)
        if len(terms):
            query = terms.astype(np.int32)
            for segment in self._segments:
                self._score(segment, query, idf, scores)
        scores[~allowed[: len(scores)]] = 0.0
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return scores[order], order.astype(np.int64)

    def query_terms(self, text: str) -> tuple[IntArray, npt.NDArray[np.float64]]:
        """The terms of `text` a search scores (ascending) and their document frequencies: those
        in at least one document and at most `max_df_ratio` of them, within `max_postings`."""
        terms = np.unique(self._vectorizer.transform([text]).indices).astype(np.int64)
        df = self._frequencies(terms)
        useful = (df > 0) & (df <= self.config.max_df_ratio * max(len(self), 1))
        terms, df = terms[useful], df[useful]
        if self.config.max_postings is not None:
            terms, df = self._within_budget(terms, df, self.config.max_postings)
        return terms, df

    def _within_budget(
        self, terms: IntArray, df: npt.NDArray[np.float64], budget: int
    ) -> tuple[IntArray, npt.NDArray[np.float64]]:
        """The rarest of `terms` (kept in ascending term order) whose postings fit in `budget`."""
        postings = self.df[terms].astype(np.int64)
        if int(postings.sum()) <= budget:
            return terms, df
        rarest = np.argsort(postings, kind="stable")
        fits = np.cumsum(postings[rarest]) <= budget
        fits[0] = True  # the rarest term is always scored
        kept = np.sort(rarest[fits])
        return terms[kept], df[kept]

    def _score(
        self, segment: Segment, terms: npt.NDArray[np.int32], idf: FloatArray, scores: FloatArray
    ) -> None:
        """Set this segment's rows of `scores` to their BM25 scores, summed as a CSC matrix-vector
        product of stored weights sums them: per row, term by term in ascending order, in float32."""
        features = segment.features
        if not len(features):
            return
        at = np.searchsorted(features, terms)
        at[at == len(features)] = 0
        hit = features[at] == terms
        if not hit.any():
            return
        at = at[hit]
        starts, ends = segment.colptr[at], segment.colptr[at + 1]
        runs = ends - starts
        more = segment.xptr[at + 1] - segment.xptr[at]
        indptr = np.zeros(len(at) + 1, dtype=np.int64)
        np.cumsum(runs, out=indptr[1:])
        if int(indptr[-1]) > _SLICE_RUNS * len(at):
            row_ids = segment.row_ids
            rows = np.concatenate([row_ids[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)])
        else:
            rows = segment.row_ids[_ranges(starts, runs)]
        weights = segment.unit[rows]  # uint16 rows: numpy casts them in buffered chunks
        if more.any():
            # the terms' repeated occurrences close each run: weigh them by their counts
            repeated = _ranges(indptr[1:] - more, more)
            counts = segment.extra[_ranges(segment.xptr[at], more)].astype(np.float32)
            norm = segment.norm[rows[repeated]]
            weights[repeated] = counts * np.float32(self.config.k1 + 1) / (counts + norm)
        block = sp.csc_matrix(
            (weights, rows.astype(np.int32), indptr.astype(np.int32)), shape=(segment.rows + 1, len(at))
        )
        scores[segment.start : segment.start + segment.rows] = (block @ idf[hit])[: segment.rows]

    def document_share(self, words: Sequence[str]) -> npt.NDArray[np.float64]:
        """For each word, the share of documents that contain it (language-normalised as in `search`)."""
        if not len(words):
            return np.zeros(0)
        terms = self._words.transform([fold(w) for w in words]).indices.astype(np.int64)  # one per word
        return self._frequencies(terms) / max(len(self), 1)

    def _frequencies(self, terms: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Document frequencies of `terms`, scaled to the whole index from each big-enough language."""
        df = self.df[terms].astype(np.float64)
        if not self.config.per_language_df:
            return df
        for code in np.flatnonzero(self.language_docs >= self.config.min_language_cases):
            share = self.language_df[code, terms] / self.language_docs[code]
            df = np.maximum(df, share * len(self))
        return df

    # --- changing rows ---------------------------------------------------------------------------

    def locate(self, slots: Sequence[int] | IntArray) -> list[tuple[Segment, IntArray]]:
        """Where the live entries of these rows are (reads only; `erase` takes the answer)."""
        wanted = np.unique(np.asarray(slots, dtype=np.int64))
        if not len(wanted):
            return []
        starts = np.array([segment.start for segment in self._segments], dtype=np.int64)
        which = np.searchsorted(starts, wanted, side="right") - 1
        found = []
        for i in np.unique(which):
            segment = self._segments[int(i)]
            found.append((segment, segment.positions_of(wanted[which == i] - segment.start)))
        return found

    def erase(
        self, slots: Sequence[int] | IntArray, located: list[tuple[Segment, IntArray]] | None = None
    ) -> None:
        """Overwrite the entries of these rows (the caller has tombstoned them); frequencies drop
        them too. In place, without rebuilding anything (erasure is a per-request path)."""
        wanted = np.unique(np.asarray(slots, dtype=np.int64))
        if not len(wanted):
            return
        languages = self._languages.values
        for segment, positions in self.locate(wanted) if located is None else located:
            features = segment.features[segment.columns_at(positions)]
            local = segment.row_ids[positions].astype(np.int64)
            codes = languages[segment.start + local]
            np.subtract.at(self.df, features, 1)
            counted = codes >= 0
            np.subtract.at(self.language_df, (codes[counted], features[counted]), 1)
            segment.kill(positions)
        for segment, local in self._rows_by_segment(wanted):
            segment.norm[local] = 0.0
            segment.unit[local] = 0.0
        codes = languages[wanted]
        np.subtract.at(self.language_docs, codes[codes >= 0], 1)
        languages[wanted] = -1
        self._lengths.values[wanted] = 0.0  # the total keeps them, for the average length

    def _rows_by_segment(self, slots: IntArray) -> list[tuple[Segment, IntArray]]:
        starts = np.array([segment.start for segment in self._segments], dtype=np.int64)
        which = np.searchsorted(starts, slots, side="right") - 1
        return [
            (self._segments[int(i)], slots[which == i] - self._segments[int(i)].start)
            for i in np.unique(which)
        ]

    def set_language(self, slot: int, code: int) -> None:
        """A live row's language changed: move its terms between the per-language frequencies."""
        previous = int(self._languages.values[slot])
        if previous == code or previous < 0:
            return
        ((segment, positions),) = self.locate([slot])
        features = segment.features[segment.columns_at(positions)]
        self.language_df[previous, features] -= 1
        self.language_df[code, features] += 1
        self.language_docs[previous] -= 1
        self.language_docs[code] += 1
        self._languages.values[slot] = code

    def tokens(self, slots: IntArray) -> int:
        """Tokens of these rows (0 for erased ones)."""
        return int(np.rint(self._lengths.values[slots].astype(np.float64).sum()))

    def count_erased_tokens(self, tokens: int) -> None:
        """Rows erased before a rebuild copied them still count for the average length."""
        self._length_total += tokens

    def language_of(self, slots: IntArray) -> npt.NDArray[np.int8]:
        codes: npt.NDArray[np.int8] = self._languages.values[slots]
        return codes

    def _count(self, segment: Segment, codes: npt.NDArray[np.int8]) -> None:
        """Add a new segment's live entries to the document frequencies."""
        width = len(segment.features)
        present = np.unique(codes[codes >= 0])  # negative: an erased row, counted nowhere
        for code in present:
            self.language_docs[code] += int((codes == code).sum())
        if not segment.dead and len(present) == 1 and (codes == present[0]).all():
            runs = np.diff(segment.colptr).astype(np.int32)
            self.df[segment.features] += runs
            self.language_df[present[0], segment.features] += runs
            return
        # one count over (language, feature) pairs; dead entries point at the phantom row
        entry_codes = np.append(codes, np.int8(-1)).astype(np.int64)[segment.row_ids]
        columns = np.repeat(np.arange(width, dtype=np.int64), np.diff(segment.colptr))
        counted = entry_codes >= 0
        pairs = np.bincount(entry_codes[counted] * width + columns[counted], minlength=LANGUAGE_CODES * width)
        per_language = pairs.reshape(LANGUAGE_CODES, width).astype(np.int32)
        self.language_df[:, segment.features] += per_language
        self.df[segment.features] += per_language.sum(axis=0, dtype=np.int32)

    # --- memory and persistence ------------------------------------------------------------------

    def nbytes(self) -> int:
        segments = sum(segment.nbytes for segment in self._segments)
        rows = self._lengths.nbytes + self._languages.nbytes
        return int(segments + rows + self.df.nbytes + self.language_df.nbytes + self.language_docs.nbytes)

    def save(self, path: Path) -> None:
        """Write the channel to an .npz file; erased rows' entries are left out."""
        k1 = self.config.k1
        parts = [segment.live(k1=k1) for segment in self._segments]
        extra_dtype = np.result_type(np.uint8, *(part.extra.dtype for part in parts))
        np.savez(
            path,
            format=np.array(FORMAT),
            n_features=np.array(self.config.n_features),
            segment_rows=np.array([part.rows for part in parts], dtype=np.int64),
            segment_features=np.array([len(part.features) for part in parts], dtype=np.int64),
            features=_concatenate([part.features for part in parts], np.int32),
            runs=_concatenate([np.diff(part.colptr) for part in parts], np.int64),
            more=_concatenate([np.diff(part.xptr) for part in parts], np.int64),
            row_ids=_concatenate([part.row_ids for part in parts], np.uint16),
            extra=_concatenate([part.extra for part in parts], extra_dtype),
            norm=_concatenate([part.norm[: part.rows] for part in parts], np.float32),
            lengths=self._lengths.values,
            languages=self._languages.values,
            length_total=np.array(self._length_total, dtype=np.int64),
        )

    @classmethod
    def load(cls, path: Path, config: LexicalConfig | None = None) -> LexicalChannel:
        """Read a channel saved by `save`, or by format 2 (converted: see `_from_weights`)."""
        channel = cls(config)
        k1 = channel.config.k1
        with np.load(path) as arrays:
            if "format" not in arrays.files:
                return _from_weights(channel, {key: arrays[key] for key in arrays.files}, path)
            if int(arrays["n_features"]) != channel.config.n_features:
                raise ValueError(
                    f"{path} hashes into {int(arrays['n_features'])} features, "
                    f"expected {channel.config.n_features}"
                )
            features, runs, more = arrays["features"], arrays["runs"], arrays["more"]
            row_ids, extra, norm = arrays["row_ids"], arrays["extra"], arrays["norm"]
            segments, row, feature, entry, repeated = [], 0, 0, 0, 0
            sizes = zip(arrays["segment_rows"].tolist(), arrays["segment_features"].tolist(), strict=True)
            for rows, width in sizes:
                colptr = np.zeros(width + 1, dtype=np.int64)
                np.cumsum(runs[feature : feature + width], out=colptr[1:])
                xptr = np.zeros(width + 1, dtype=np.int64)
                np.cumsum(more[feature : feature + width], out=xptr[1:])
                counts = extra[repeated : repeated + int(xptr[-1])]
                segments.append(
                    Segment(
                        rows,
                        features[feature : feature + width].astype(np.int32),
                        colptr,
                        xptr,
                        row_ids[entry : entry + int(colptr[-1])].astype(np.uint16),
                        counts.astype(_count_dtype(int(counts.max()) if len(counts) else 0)),
                        norm[row : row + rows],
                        k1=k1,
                    )
                )
                row, feature, entry, repeated = (
                    row + rows,
                    feature + width,
                    entry + int(colptr[-1]),
                    repeated + int(xptr[-1]),
                )
            channel._lengths.extend(arrays["lengths"].astype(np.float32))
            channel._append_segments(segments, arrays["languages"].astype(np.int8))
            channel._length_total = int(arrays["length_total"])
        return channel


def _concatenate(arrays: Sequence[npt.NDArray[Any]], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    return (
        np.concatenate([np.asarray(a, dtype=dtype) for a in arrays]) if arrays else np.zeros(0, dtype=dtype)
    )


def _csr_parts(counts: sp.csr_matrix) -> tuple[int, npt.NDArray[np.int32], _Parts]:
    """These rows' term counts (a CSR matrix with sorted, summed entries) as entry lists."""
    rows, width = counts.shape
    if counts.nnz * 4 > width:  # many entries: a lookup table over all features is cheaper
        present = np.zeros(width, dtype=bool)
        present[counts.indices] = True
        features = np.flatnonzero(present).astype(np.int32)
        compact = (np.cumsum(present, dtype=np.int32) - 1)[counts.indices]
    else:
        unique, inverse = np.unique(counts.indices, return_inverse=True)
        features, compact = unique.astype(np.int32), inverse.astype(np.int32)
    values = np.rint(counts.data).astype(np.int64)
    once = values == 1
    # scipy's CSR -> CSC conversion is a counting sort: by feature, rows ascending
    split = [
        sp.csr_matrix(
            (np.where(keep, values, 0), compact.copy(), counts.indptr.copy()), shape=(rows, len(features))
        )
        for keep in (once, ~once)
    ]
    by_feature = []
    for matrix in split:
        matrix.eliminate_zeros()
        matrix = matrix.tocsc()
        columns = np.repeat(np.arange(len(features), dtype=np.int64), np.diff(matrix.indptr))
        by_feature.append((columns, matrix.indices.astype(np.int64), matrix.data))
    (once_columns, once_rows, _), (more_columns, more_rows, more_counts) = by_feature
    largest = int(more_counts.max()) if len(more_counts) else 0
    parts = _Parts(
        once_columns, once_rows, more_columns, more_rows, more_counts.astype(_count_dtype(largest))
    )
    return rows, features, parts


def _from_weights(channel: LexicalChannel, arrays: dict[str, npt.NDArray[Any]], path: Path) -> LexicalChannel:
    """A channel from format 2: a CSC matrix of BM25 weights w = c (k1 + 1) / (c + norm).

    Each row's counts c and normalisation are recovered so that the float32 formula gives back
    every stored weight bit for bit (so scores are unchanged); a file where that fails for some
    row is refused rather than loaded with different scores.
    """
    shape = tuple(int(x) for x in arrays["shape"])
    if shape[1] != channel.config.n_features:
        raise ValueError(f"{path} hashes into {shape[1]} features, expected {channel.config.n_features}")
    weights = sp.csc_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape).tocsr()
    weights.eliminate_zeros()  # erased rows' entries were zeros
    weights.sort_indices()
    lengths = arrays["lengths"].astype(np.float32)
    entries = np.diff(weights.indptr)
    erased = (entries == 0) & (lengths > 0)
    languages = np.where(erased, -1, arrays["languages"]).astype(np.int8)
    norm, counts = _recover_counts(weights, channel.config)
    if norm is None or counts is None:
        raise ValueError(f"{path}: stored BM25 weights that no term count reproduces exactly")
    k1, b = channel.config.k1, channel.config.b
    norm[entries == 0] = np.float32(k1 * (1 - b))  # no terms: never used; what length 0 gives
    norm[erased] = 0.0
    matrix = sp.csr_matrix((counts, weights.indices, weights.indptr), shape=shape)
    step = channel.config.segment_rows
    segments = []
    for start in range(0, shape[0], step):
        rows, features, parts = _csr_parts(matrix[start : start + step])
        segments.append(_assemble(rows, features, [parts], norm[start : start + rows], k1=k1))
    channel._length_total = int(np.rint(lengths.astype(np.float64).sum()))
    lengths[erased] = 0.0
    channel._lengths.extend(lengths)
    channel._append_segments(segments, languages)
    return channel


def _recover_counts(
    weights: sp.csr_matrix, config: LexicalConfig
) -> tuple[FloatArray, npt.NDArray[np.float32]] | tuple[None, None]:
    """Per-row normalisation and per-entry counts that reproduce the stored float32 weights."""
    norm = np.zeros(weights.shape[0], dtype=np.float32)
    counts = np.zeros(weights.nnz, dtype=np.float32)
    for start in range(0, weights.shape[0], 65_536):  # bounded temporaries
        block = weights[start : start + 65_536]
        solved = _recover_block(block, np.float32(config.k1 + 1))
        if solved is None:
            return None, None
        norm[start : start + block.shape[0]] = solved[0]
        counts[weights.indptr[start] : weights.indptr[start] + block.nnz] = solved[1]
    return norm, counts


def _recover_block(
    weights: sp.csr_matrix, k: np.float32
) -> tuple[FloatArray, npt.NDArray[np.float32]] | None:
    rows = weights.shape[0]
    w = weights.data.astype(np.float32)
    runs = np.diff(weights.indptr)
    norm = np.zeros(rows, dtype=np.float32)
    counts = np.zeros(len(w), dtype=np.float32)
    pending = np.flatnonzero(runs > 0)  # rows still to solve
    lowest = np.zeros(rows, dtype=np.float64)
    if len(pending):
        lowest[pending] = np.minimum.reduceat(w, weights.indptr[pending].astype(np.int64))
    # the lowest weight is the smallest count's: almost always 1, else try a few more
    for smallest in range(1, 9):
        if not len(pending):
            break
        guess = smallest * (float(k) / lowest[pending] - 1.0)
        positions = _entries_of(weights.indptr, pending)
        owner = np.repeat(np.arange(len(pending)), runs[pending])
        entry_w = w[positions]
        c = np.maximum(np.rint(guess[owner] * entry_w / (float(k) - entry_w.astype(np.float64))), 1)
        c = c.astype(np.float32)
        # the normalisation in float32 steps around the estimate, nearest first
        for shift in (0, 1, -1, 2, -2, 3, -3, 4, -4, 6, -6, 8, -8, 12, -12, 16, -16):
            candidate = (guess.astype(np.float32).view(np.int32) + np.int32(shift)).view(np.float32)
            wrong = c * k / (c + candidate[owner]) != entry_w
            bad = np.bincount(owner[wrong], minlength=len(pending)) > 0
            solved = ~bad
            norm[pending[solved]] = candidate[solved]
            mine = solved[owner]
            counts[positions[mine]] = c[mine]
            if not bad.any():
                pending = pending[bad]
                break
            keep = ~mine
            renumber = np.cumsum(bad) - 1
            pending, guess = pending[bad], guess[bad]
            positions, entry_w, c, owner = positions[keep], entry_w[keep], c[keep], renumber[owner[keep]]
    return None if len(pending) else (norm, counts)


def _entries_of(indptr: npt.NDArray[np.integer[Any]], rows: IntArray) -> IntArray:
    """Positions in a CSR matrix's data of the entries of these rows, row by row."""
    starts, ends = indptr[rows].astype(np.int64), indptr[rows + 1].astype(np.int64)
    runs = ends - starts
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(runs, out=offsets[1:])
    return np.repeat(starts - offsets[:-1], runs) + np.arange(int(offsets[-1]), dtype=np.int64)
