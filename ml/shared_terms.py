"""Why a similar case is similar: the words a post shares with it, across English and Spanish.

A doctor trusts a suggestion they can check. For each suggested case we list the content words
it has in common with the post, as written on each side ("tos" ↔ "cough"), and a short excerpt
around them. Words match when they are the same after accent folding and a light plural
stemming, when two longer words share their first six letters (cognates: ramificados/ramified),
or when the bundled CodiEsp lexicon translates one into the other. Stop words,
placeholders left by de-identification and numbers never count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import numpy.typing as npt
from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH_STOP_WORDS
from spacy.lang.es.stop_words import STOP_WORDS as SPANISH_STOP_WORDS

from ml.lexicon import BilingualLexicon
from ml.text import fold

_WORD = re.compile(r"[^\W\d_]{3,}")  # letters only: numbers and doses say little on their own
COGNATE_PREFIX = 6
COGNATE_MIN_LENGTH = 7  # both words: shorter ones share six letters by chance too often
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")  # what de-identification left, e.g. [NAME]
# words every case post uses: sharing them explains nothing
_POST_WORDS = {
    "patient", "patients", "paciente", "pacientes", "year", "years", "old", "ano", "anos", "month",
    "months", "mes", "meses", "week", "weeks", "semana", "semanas", "day", "days", "dia", "dias",
    "history", "antecedentes", "case", "caso", "presents", "presenta", "presented", "previously",
    "male", "female", "varon", "mujer", "hombre", "nino", "nina", "child", "would", "thoughts",
    "anyone", "alguien", "ideas", "help", "ayuda", "since", "desde", "hace", "with", "without",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SharedTerm:
    term: str  # as written in the similar case
    query_term: str  # as written in the post


@dataclass(frozen=True, slots=True)
class _Word:
    surface: str
    keys: tuple[str, ...]  # stem, and the cognate prefix of a long word


DocumentShare = Callable[[Sequence[str]], npt.ArrayLike]  # words -> share of cases holding each


def shared_terms(
    query: str,
    cases: Sequence[str],
    lexicon: BilingualLexicon,
    *,
    limit: int = 8,
    document_share: DocumentShare | None = None,
    max_share: float = 0.05,
) -> list[list[SharedTerm]]:
    """For each case, its content words that `query` also has, or has in the other language, in
    the case's order (the query is analysed once for all of them).

    With `document_share` (e.g. `CaseIndex.document_share`, asked once for every case), a pair is
    kept only when both its words are in at most `max_share` of the cases: words every post uses
    explain nothing.
    """
    wanted = _wanted(query, lexicon)
    found = [_matches(wanted, case) for case in cases]
    if document_share is not None and any(found):
        words = sorted({w for terms in found for t in terms for w in (t.term, t.query_term)})
        share = dict(zip(words, np.asarray(document_share(words), dtype=float).tolist(), strict=True))
        found = [
            [t for t in terms if max(share[t.term], share[t.query_term]) <= max_share] for terms in found
        ]
    return [terms[:limit] for terms in found]


def _wanted(query: str, lexicon: BilingualLexicon) -> dict[str, str]:
    """Key of a case-side word -> the post's word that asks for it."""
    wanted: dict[str, str] = {}
    for word in _content_words(query):
        for key in (*word.keys, *_translated_keys(fold(word.surface), lexicon)):
            wanted.setdefault(key, word.surface)
    return wanted


def _matches(wanted: dict[str, str], case: str) -> list[SharedTerm]:
    found: list[SharedTerm] = []
    seen: set[str] = set()
    for word in _content_words(case):
        matched = next((k for k in word.keys if k in wanted), None)
        if matched is not None and matched not in seen:
            seen.add(matched)
            found.append(SharedTerm(term=word.surface, query_term=wanted[matched]))
    return found


def excerpt(text: str, terms: list[SharedTerm], *, width: int = 300) -> str:
    """About `width` characters of `text`, starting shortly before its first shared term."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    positions = [m.start() for t in terms if (m := re.search(rf"\b{re.escape(t.term)}\b", flat))]
    start = max(0, min(positions, default=0) - width // 4)
    if start:
        start = flat.find(" ", start) + 1 or start  # begin on a word
    end = start + width
    cut = flat[start:end]
    if end < len(flat):
        cut = cut[: cut.rfind(" ")] if " " in cut else cut
    return f"{'… ' if start else ''}{cut}{' …' if end < len(flat) else ''}"


def _content_words(text: str) -> Iterator[_Word]:
    for match in _WORD.finditer(_PLACEHOLDER.sub(" ", text)):
        keys = _word_keys(match.group())
        if keys is not None:
            yield _Word(match.group(), keys)


@lru_cache(maxsize=1 << 16)
def _word_keys(surface: str) -> tuple[str, ...] | None:
    """A word's match keys, or None for a stop word. Cached: a route call analyses its post and
    five cases, thousands of words, most of them seen in earlier calls."""
    folded = fold(surface)
    return None if folded in _stop_words() else _keys(folded)


def _translated_keys(folded: str, lexicon: BilingualLexicon) -> Iterator[str]:
    for table in (lexicon.es_to_en, lexicon.en_to_es):
        if (translated := table.get(folded)) is not None:
            yield from _keys(translated)


def _keys(folded: str) -> tuple[str, ...]:
    stem = _stem(folded)
    # "#" keeps a cognate key from ever equalling a stem: fontanela is no cognate of Fontan
    return (stem, f"#{folded[:COGNATE_PREFIX]}") if len(folded) >= COGNATE_MIN_LENGTH else (stem,)


def _stem(folded: str) -> str:
    """A number- and gender-insensitive key: moldes/molde, casts/cast, ramificados/ramificada."""
    stem = folded[:-1] if folded.endswith("s") and len(folded) > 4 else folded
    return stem[:-1] if stem[-1] in "aeo" and len(stem) > 4 else stem


@cache
def _stop_words() -> frozenset[str]:
    return frozenset(fold(w) for w in ENGLISH_STOP_WORDS | SPANISH_STOP_WORDS | _POST_WORDS)
