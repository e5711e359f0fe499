"""Why a doctor was suggested, as a code with parameters: a page renders it in the reader's
language, and `english` keeps the sentence clients of the first API version show."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ml.taxonomy import load_taxonomy

ParamValue = int | str | tuple[str, ...]
LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # one of CODES
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in _ENGLISH:
            raise ValueError(f"unknown reason code {self.code!r}; known: {sorted(_ENGLISH)}")

    @property
    def english(self) -> str:
        return _ENGLISH[self.code](self.params)


def _specialties(codes: ParamValue) -> str:
    taxonomy = load_taxonomy()
    listed = codes if isinstance(codes, tuple) else (str(codes),)
    return ", ".join(taxonomy.get(c).name_en.lower() for c in listed)


def _count(value: ParamValue) -> int:
    return value if isinstance(value, int) else int(str(value))


def _language(value: ParamValue) -> str:
    return LANGUAGE_NAMES.get(str(value), str(value))


def _minutes(value: ParamValue) -> str:
    minutes = _count(value)
    return f"{minutes} min" if minutes < 60 else f"{minutes / 60:.1f} h"


_ENGLISH: dict[str, Callable[[Mapping[str, ParamValue]], str]] = {
    "answered_similar": lambda p: (
        f"answered {_count(p['count'])} similar case{'s' if _count(p['count']) > 1 else ''}"
    ),
    "practises": lambda p: _specialties(p["specialties"]),
    "follows": lambda p: f"follows {_specialties(p['specialty'])}",
    "reads_language": lambda p: f"reads {_language(p['language'])}",
    "needs_translation": lambda p: f"does not read {_language(p['language'])}: the platform translates",
    "answers_last_30_days": lambda p: f"{_count(p['count'])} answers in the last 30 days",
    "usually_answers_within": lambda p: f"usually answers within {_minutes(p['minutes'])}",
}
CODES = tuple(_ENGLISH)
