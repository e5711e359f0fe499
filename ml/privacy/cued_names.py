"""Names in notes written all upper or all lower case, after a title or a relative.

Nursing notes write "DR. HUGHES NOTIFIED", "per dr. przybylo", "son bill called", "CONTACT
PERSON CAROLE HAYES": no capital letter marks the name, but the word before does. After such a
cue, a word is a name when it is not a common word of clinical English (`en_words.txt`, built by
`casematch train-deid` from the English training text outside every gold name: "md aware",
"wife at bedside", "per protocol" stay). A second uncommon word after it is the surname.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from ml.privacy.eponyms import is_eponym
from ml.privacy.kinds import NAME

WORDS_FILE = Path(__file__).resolve().parents[1] / "resources" / "deid_ner" / "en_words.txt"

_CUE = re.compile(
    r"(?i:\b(?:dr|drs|doctor|md|np|ho|rn|mr|mrs|ms|miss|rabbi|father|fr|rev|per|daughter|son|wife|husband"
    r"|brother|sister|mother|father|girlfriend|boyfriend|fianc[eé]e?|friend|niece|nephew|aunt|uncle"
    r"|grandson|granddaughter|grandmother|grandfather|cousin|contact person|hcp|proxy|updated"
    r"|(?:spoke|spoken|speak|speaking|talk|talked|met|meeting|discussed|explained|called)"
    r"(?: extensively| at length| in depth)?"
    r" (?:with|to))\b(?:\.[ \t]{0,3}|[ \t]{1,3}))"
)
_INITIAL = r"(?:[A-Za-z]\.[ \t]?)?"
_WORD = r"[A-Za-z][A-Za-z'\u2019-]{1,30}"
_AFTER_CUE = re.compile(rf"(?P<initial>{_INITIAL})(?P<first>{_WORD})(?:[ \t](?P<second>{_WORD}))?")
# A name before what only people do in a note: "W. MAROTTA AWARE", "john states", "Radu wishes",
# "lorrie morales is a 70 yr old".
_BEFORE_CUE = re.compile(
    rf"(?<![\w.'])(?P<initial>{_INITIAL})(?P<first>{_WORD})(?:[ \t](?P<second>{_WORD}))?"
    r"(?=[ \t]+(?i:(?:is |was |made |now )?(?:aware|notified|paged|informed|updated|states|stated|said"
    r"|reports|verbalizes|verbalized|wishes|does not wish|agrees|agreed|consented|visited|called)\b"
    r"|(?:is|was) an? \d{1,3}[ -]?(?:yr|year|y/?o\b|yo\b)))"
)


_LOWER = re.compile(r"[a-z]{3}")
_VOWEL = re.compile(r"[AEIOUY]")


def _acronym(text: str, match: re.Match[str]) -> bool:
    """An upper-case word in mixed-case text that is short or has no vowel: "per CVVHF", "HO"."""
    word = match.group("first")
    if not word.isupper() or not _LOWER.search(text, max(0, match.start() - 60), match.end() + 60):
        return False
    return len(word) <= 3 or _VOWEL.search(word) is None


_TYPO_MIN_LENGTH = 6  # shorter names are too often one letter away from a word ("pica", "pic")


@cache
def common_words(path: Path = WORDS_FILE) -> frozenset[str]:
    """Lower-case words that are not names in clinical English (empty if the list is missing)."""
    if not path.exists():
        return frozenset()
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


@cache
def _one_letter_less(path: Path = WORDS_FILE) -> frozenset[str]:
    """Every common word (of typo length) with one letter dropped: "slidng", "vebal", "protcol"."""
    return frozenset(
        w[:i] + w[i + 1 :] for w in common_words(path) if len(w) >= _TYPO_MIN_LENGTH for i in range(len(w))
    )


def is_typo_of_common(word: str, path: Path = WORDS_FILE) -> bool:
    """One letter missing or extra ("slidng", "visisted", "descision") from a common word."""
    if len(word) < _TYPO_MIN_LENGTH:
        return False
    words, dropped = common_words(path), _one_letter_less(path)
    if word in dropped:
        return True
    # One letter extra ("visisted"); a wrong letter is not checked: too many names are one
    # substitution away from some word ("thomas").
    return any(word[:i] + word[i + 1 :] in words for i in range(len(word)))


class CuedNameRecognizer(LocalRecognizer):
    """An uncommon word (and an uncommon next one) after a title or relative word, any case."""

    def __init__(self, language: str, *, words_file: Path = WORDS_FILE) -> None:
        self._words_file = words_file
        super().__init__(supported_entities=[NAME], supported_language=language, name="CuedNameRecognizer")

    def load(self) -> None:
        """Read the word list (shared by every instance) before threads share it."""
        _one_letter_less(self._words_file)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        words = common_words(self._words_file)
        if not words:
            return []
        results = []
        matches = [m for cue in _CUE.finditer(text) if (m := _AFTER_CUE.match(text, cue.end()))]
        for match in [*matches, *_BEFORE_CUE.finditer(text)]:
            first, second = match.group("first"), match.group("second")
            if not self._is_name(first, words) or _acronym(text, match):
                continue
            end = match.end("first")
            if second is not None and self._is_name(second, words):
                end = match.end("second")
            elif match.re is _BEFORE_CUE and second is not None:
                continue  # "lasix given aware": the word before the verb is the one to vouch for
            start = match.start("initial") if match.group("initial") else match.start("first")
            results.append(RecognizerResult(entity_type=NAME, start=start, end=end, score=0.6))
        return results

    def _is_name(self, word: str, words: frozenset[str]) -> bool:
        bare = word.lower().strip("'\u2019-")
        if len(bare) < 2 or bare in words or is_eponym(bare) or is_typo_of_common(bare, self._words_file):
            return False
        return not all(part in words for part in bare.split("-"))  # "follow-up", "x-ray"
