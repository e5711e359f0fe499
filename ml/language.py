"""Which language a post is written in (English or Spanish today), from its function words.

Function words are the most reliable signal in short clinical posts: drug names, lab units and
eponyms are shared by both languages, but "the/with/and" and "el/con/y" are not. Anything that
is neither clearly English nor clearly Spanish is reported as unknown, so the caller can ask.
"""

from __future__ import annotations

import re

from ml.text import fold

SUPPORTED = ("en", "es")
UNKNOWN = "und"
_WORD = re.compile(r"[a-z]+")
# Frequent function words that are not also frequent words of the other language.
_ENGLISH = """the and with of in on for to is was are has have had after before from this that which
but not her his she he they patient year old days weeks months history boy girl man woman male female
presents presented presenting pain fever cough up"""
_SPANISH = """el la los las y con de del en por para es fue son tiene tenia ha tras desde este esta que pero
sin su sus ella paciente anos dias semanas meses antecedentes nino nina varon mujer hombre presenta
dolor fiebre tos se"""
_FUNCTION_WORDS = {"en": frozenset(_ENGLISH.split()), "es": frozenset(_SPANISH.split())}


def detect_language(text: str, *, min_words: int = 2) -> str:
    """'en', 'es', or 'und' when fewer than `min_words` function words point one way."""
    counts = {language: 0 for language in SUPPORTED}
    for word in _WORD.findall(fold(text)):
        for language, words in _FUNCTION_WORDS.items():
            if word in words:
                counts[language] += 1
    best = max(counts, key=lambda language: counts[language])
    others = max(count for language, count in counts.items() if language != best)
    if counts[best] < min_words or counts[best] < 2 * others:
        return UNKNOWN
    return best
