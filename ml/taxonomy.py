"""The specialty taxonomy the API speaks (63 codes, English and Spanish names)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources


@dataclass(frozen=True, slots=True)
class Specialty:
    code: str
    name_en: str
    name_es: str
    parent: str | None

    def name(self, language: str) -> str:
        """The display name in `language` ('es' gives Spanish, anything else English)."""
        return self.name_es if language == "es" else self.name_en


class UnknownSpecialtyError(ValueError):
    """A specialty code that is not in the taxonomy."""


@dataclass(frozen=True)
class Taxonomy:
    specialties: tuple[Specialty, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.specialties)

    def __len__(self) -> int:
        return len(self.specialties)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str) -> Specialty:
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownSpecialtyError(
                f"specialty {code!r} is not one of the {len(self)} taxonomy codes"
            ) from None

    def index(self, code: str) -> int:
        """Position of `code` in the taxonomy (stable column order for models)."""
        return self.codes.index(self.get(code).code)

    def children(self, code: str) -> tuple[str, ...]:
        """Codes whose parent is `code` (e.g. the pediatric subspecialties of pediatrics)."""
        return self._children.get(code, ())

    @cached_property
    def _children(self) -> dict[str, tuple[str, ...]]:
        children: dict[str, list[str]] = {}
        for s in self.specialties:
            if s.parent:
                children.setdefault(s.parent, []).append(s.code)
        return {parent: tuple(codes) for parent, codes in children.items()}

    @cached_property
    def _by_code(self) -> dict[str, Specialty]:
        return {s.code: s for s in self.specialties}


@cache
def load_taxonomy() -> Taxonomy:
    """Load the bundled `specialties.csv` (a copy of shared/taxonomy/specialties.csv)."""
    text = resources.files("ml.resources").joinpath("specialties.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    specialties = tuple(
        Specialty(code=r["code"], name_en=r["name_en"], name_es=r["name_es"], parent=r["parent"] or None)
        for r in rows
    )
    return Taxonomy(specialties)
