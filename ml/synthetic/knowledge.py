"""The clinical knowledge base behind the synthetic world: conditions and how they present.

The knowledge base is hand-written YAML under `data/synthetic/kb/`. Each condition carries its
specialties, demographics, urgency, rarity and several presentations written independently in
English, Spanish from Spain (es-ES) and Spanish from Mexico (es-MX). Presentations are lists of
phrase fragments that the case writer (`ml.synthetic.cases`) composes into posts.

Run `python -m ml.synthetic.knowledge [KB_DIR]` to validate a knowledge base and print coverage.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ml.paths import KNOWLEDGE_BASE_DIR
from ml.taxonomy import load_taxonomy
from ml.text import fold

Locale = Literal["en", "es-ES", "es-MX"]
Urgency = Literal["emergent", "urgent", "routine"]
Rarity = Literal["common", "uncommon", "rare", "very_rare"]

# libyaml's loader when PyYAML was built with it: the knowledge base is a few MB of YAML.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DEFAULT_KB_DIR = KNOWLEDGE_BASE_DIR

_Phrases = list[str]


# The generator states the patient's age and sex itself; a presentation that states them too would
# contradict it ("Seeing a 71-year-old man ... 52 y/o M").
_STATED_AGE = re.compile(
    r"\b\d{1,3}\s*-?\s*(y/?o|yo|yrs? old|years? old|year-old|month-old|week-old|day-old)\b"
    r"|(?<![.\d°])\b\d{1,2}[MF]\b"
    r"|\b(man|woman|male|female|boy|girl|gentleman|lady)\s*,?\s*(aged\s+)?\d"
    r"|\b(var[oó]n|mujer|ni[nñ][oa]|hombre|paciente|lactante|adolescente|masculino|femenin[oa]"
    r"|reci[eé]n nacid[oa])\s+(de\s+)?\d{1,3}\s*(a[nñ]os|meses|d[ií]as|semanas|a\b)",
    re.IGNORECASE,
)
_GENDERED_EN = re.compile(
    r"\b(he|she|his|her|hers|him|man|woman|boy|girl|male|female|gentleman|lady)\b", re.I
)


class Presentation(BaseModel):
    """One way a condition shows up, as fragments in one locale."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locale: Locale
    # Set when the wording fixes the patient's sex (English pronouns, Spanish "la paciente",
    # "cansada", pregnancy...) or needs a narrower age than the condition's band.
    sex: Literal["M", "F"] | None = None
    age_min: float | None = Field(default=None, ge=0, le=105)
    age_max: float | None = Field(default=None, ge=0, le=105)
    chief_complaint: str = Field(min_length=3, max_length=90)
    history: _Phrases = Field(min_length=1, max_length=5)
    symptoms: _Phrases = Field(min_length=3, max_length=8)
    exam: _Phrases = Field(min_length=2, max_length=6)
    tests: _Phrases = Field(min_length=2, max_length=7)
    treatments: _Phrases = Field(min_length=1, max_length=5)
    question: str | None = None

    @field_validator("history", "symptoms", "exam", "tests", "treatments")
    @classmethod
    def _non_empty_phrases(cls, phrases: list[str]) -> list[str]:
        for phrase in phrases:
            if not phrase.strip():
                raise ValueError("empty phrase")
            if phrase.rstrip().endswith("."):
                raise ValueError(f"phrase {phrase!r} must be a fragment without a final full stop")
        return phrases

    @model_validator(mode="after")
    def _patient_left_to_generator(self) -> Presentation:
        for text in self.texts():
            if _STATED_AGE.search(text):
                raise ValueError(
                    f"{text!r} states the patient's age/sex; the generator writes those itself "
                    "(drop them, or narrow with the presentation's age_min/age_max and sex fields; "
                    "a relative's age is fine written as 'sister, aged 5' / 'hermana de 5 años')"
                )
            gendered = _GENDERED_EN.search(text) if self.locale == "en" and self.sex is None else None
            if gendered:
                raise ValueError(
                    f"{text!r} is gendered ({gendered.group(0)!r}): set `sex: M` or `sex: F` "
                    "on this presentation (also for Spanish ones whose wording is gendered), or reword"
                )
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError(f"presentation age_min {self.age_min} > age_max {self.age_max}")
        return self

    def texts(self) -> Iterable[str]:
        yield self.chief_complaint
        yield from self.history
        yield from self.symptoms
        yield from self.exam
        yield from self.tests
        yield from self.treatments
        if self.question:
            yield self.question


class Condition(BaseModel):
    """A diagnosis that cases in the synthetic world are drawn from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{2,63}$")
    name_en: str
    name_es: str
    aliases_en: list[str] = Field(default_factory=list)
    aliases_es: list[str] = Field(default_factory=list)
    primary_specialty: str
    secondary_specialties: list[str] = Field(min_length=1, max_length=5)
    age_min: float = Field(ge=0, le=100)
    age_max: float = Field(ge=0, le=105)
    male_fraction: float = Field(ge=0, le=1)
    urgency: Urgency
    rarity: Rarity
    presentations: list[Presentation] = Field(min_length=4)

    @field_validator("primary_specialty")
    @classmethod
    def _known_primary(cls, code: str) -> str:
        load_taxonomy().get(code)
        return code

    @field_validator("secondary_specialties")
    @classmethod
    def _known_secondary(cls, codes: list[str]) -> list[str]:
        taxonomy = load_taxonomy()
        for code in codes:
            taxonomy.get(code)
        if len(set(codes)) != len(codes):
            raise ValueError(f"duplicate secondary specialties {codes}")
        return codes

    @model_validator(mode="after")
    def _consistent(self) -> Condition:
        if self.primary_specialty in self.secondary_specialties:
            raise ValueError("primary specialty repeated among secondary specialties")
        if self.age_min > self.age_max:
            raise ValueError(f"age_min {self.age_min} > age_max {self.age_max}")
        for presentation in self.presentations:
            low = presentation.age_min if presentation.age_min is not None else self.age_min
            high = presentation.age_max if presentation.age_max is not None else self.age_max
            if low < self.age_min or high > self.age_max:
                raise ValueError(
                    f"a {presentation.locale} presentation's ages {low}-{high} leave the condition's band "
                    f"{self.age_min}-{self.age_max}"
                )
        locales = Counter(p.locale for p in self.presentations)
        if locales["en"] < 2 or locales["es-ES"] < 1 or locales["es-MX"] < 1:
            raise ValueError(f"need >=2 en, >=1 es-ES and >=1 es-MX presentations, got {dict(locales)}")
        for presentation in self.presentations:
            for text in presentation.texts():
                leaked = self.names_in(text)
                if leaked:
                    raise ValueError(f"presentation text {text!r} states the diagnosis ({leaked!r})")
        return self

    @property
    def specialties(self) -> list[str]:
        """Primary first, then secondary: every specialty that should see such a case."""
        return [self.primary_specialty, *self.secondary_specialties]

    def names(self, language: str | None = None) -> list[str]:
        """Diagnosis names and aliases, in one language or both."""
        english = [self.name_en, *self.aliases_en]
        spanish = [self.name_es, *self.aliases_es]
        if language == "en":
            return english
        if language == "es":
            return spanish
        return english + spanish

    def names_in(self, text: str) -> str | None:
        """The first diagnosis name or alias (either language) that `text` states, if any."""
        match = self._names_pattern.search(fold(text))
        return self._names_by_folded[match.group(1)] if match else None

    @cached_property
    def _names_by_folded(self) -> dict[str, str]:
        return {fold(name): name for name in reversed(self.names())}  # first listed name wins

    @cached_property
    def _names_pattern(self) -> re.Pattern[str]:
        alternatives = sorted(self._names_by_folded, key=len, reverse=True)
        return re.compile(r"(?<!\w)(" + "|".join(map(re.escape, alternatives)) + r")(?!\w)")

    def presentations_for(self, locale: str) -> list[Presentation]:
        return [p for p in self.presentations if p.locale == locale]


class KnowledgeBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    conditions: tuple[Condition, ...]
    fingerprint: str

    def by_id(self) -> dict[str, Condition]:
        return {c.id: c for c in self.conditions}

    def primary_coverage(self) -> Counter[str]:
        return Counter(c.primary_specialty for c in self.conditions)


class KnowledgeBaseError(ValueError):
    """The knowledge base files are missing or invalid."""


def load_knowledge_base(kb_dir: Path = DEFAULT_KB_DIR) -> KnowledgeBase:
    """Load and validate every `*.yaml` file in `kb_dir` (sorted, so the order is stable).

    `kb_dir` may also be a single YAML file, to check one file while it is being written.
    """
    files = [kb_dir] if kb_dir.is_file() else sorted(kb_dir.glob("*.yaml"))
    if not files:
        raise KnowledgeBaseError(f"no knowledge base files (*.yaml) in {kb_dir}")
    digest = hashlib.sha256()
    conditions: list[Condition] = []
    problems: list[str] = []
    for path in files:
        raw = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + raw)
        conditions_in_file, file_problems = _parse_file(path, raw)
        conditions.extend(conditions_in_file)
        problems.extend(file_problems)
    duplicates = [cid for cid, n in Counter(c.id for c in conditions).items() if n > 1]
    if duplicates:
        problems.append(f"duplicate condition ids: {sorted(duplicates)}")
    if problems:
        raise KnowledgeBaseError("invalid knowledge base:\n" + "\n".join(problems))
    return KnowledgeBase(conditions=tuple(conditions), fingerprint=digest.hexdigest()[:16])


def _parse_file(path: Path, raw: bytes) -> tuple[list[Condition], list[str]]:
    try:
        entries = yaml.load(raw, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
        return [], [f"{path.name}: not valid YAML: {exc}"]
    if not isinstance(entries, list):
        return [], [f"{path.name}: expected a list of conditions at the top level"]
    conditions: list[Condition] = []
    problems: list[str] = []
    for position, entry in enumerate(entries):
        label = entry.get("id", f"#{position}") if isinstance(entry, dict) else f"#{position}"
        try:
            conditions.append(Condition.model_validate(entry))
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            problems.append(f"{path.name}: condition {label}: {details}")
    return conditions, problems


def coverage_report(kb: KnowledgeBase) -> str:
    """Lines naming how many conditions each specialty leads, and which it lacks."""
    taxonomy = load_taxonomy()
    primary = kb.primary_coverage()
    missing = [code for code in taxonomy.codes if primary[code] == 0]
    lines = [f"{len(kb.conditions)} conditions, fingerprint {kb.fingerprint}"]
    lines += [f"  {code:36s} {primary[code]}" for code in taxonomy.codes]
    lines.append(f"specialties with no primary condition: {missing or 'none'}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    kb_dir = Path(argv[0]) if argv else DEFAULT_KB_DIR  # a folder, or one file
    try:
        kb = load_knowledge_base(kb_dir)
    except KnowledgeBaseError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(coverage_report(kb))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
