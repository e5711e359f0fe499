"""Fake patient identifiers, planted in some posts so that de-identification can be measured.

Every planted value is recorded as a span (field, start, end, kind), the gold standard for
recall and precision of a de-identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

import numpy as np
from faker import Faker

NAME = "NAME"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
PHONE = "PHONE"
EMAIL = "EMAIL"
ADDRESS = "ADDRESS"
RECORD_NUMBER = "RECORD_NUMBER"
NATIONAL_ID = "NATIONAL_ID"
KINDS = (NAME, DATE_OF_BIRTH, PHONE, EMAIL, ADDRESS, RECORD_NUMBER, NATIONAL_ID)

_FAKER_LOCALE = {
    "US": "en_US",
    "CA": "en_CA",
    "GB": "en_GB",
    "IE": "en_IE",
    "AU": "en_AU",
    "NZ": "en_NZ",
    "ZA": "en_GB",
    "MX": "es_MX",
    "ES": "es_ES",
}
_MONTHS_ES = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    kind: str


@dataclass
class _Sentence:
    """Text built piece by piece, remembering where each identifier landed."""

    text: str = ""
    spans: list[Span] = field(default_factory=list)

    def say(self, words: str) -> _Sentence:
        self.text += words
        return self

    def put(self, kind: str, value: str) -> _Sentence:
        self.spans.append(Span(len(self.text), len(self.text) + len(value), kind))
        self.text += value
        return self


@dataclass(frozen=True)
class PlantedIdentifiers:
    sentence: str
    spans: tuple[Span, ...]


class IdentifierFactory:
    """Writes one identifier-bearing sentence in the author's language and country conventions."""

    @cached_property
    def _fakers(self) -> dict[str, Faker]:
        return {country: Faker(locale) for country, locale in sorted(_FAKER_LOCALE.items())}

    def plant(
        self,
        *,
        country: str,
        language: str,
        patient_sex: str,
        patient_age: float,
        created_at: datetime,
        rng: np.random.Generator,
    ) -> PlantedIdentifiers:
        fake = self._fakers[country]
        fake.seed_instance(int(rng.integers(2**31)))  # Faker follows the world's seed
        name = (fake.name_male() if patient_sex == "M" else fake.name_female()).replace("\n", " ")
        birth = created_at - timedelta(days=patient_age * 365.25 + float(rng.integers(0, 300)))
        values = {
            NAME: name,
            DATE_OF_BIRTH: _format_date(birth, country, language, rng),
            PHONE: fake.phone_number(),
            EMAIL: fake.free_email(),
            ADDRESS: fake.address().replace("\n", ", "),
            RECORD_NUMBER: str(rng.integers(1_000_000, 99_999_999)),
            NATIONAL_ID: _national_id(fake, country, birth=birth, sex=patient_sex, rng=rng),
            "born_es": "nacido" if patient_sex == "M" else "nacida",  # wording, not an identifier
        }
        writers = _SPANISH if language == "es" else _ENGLISH
        choice = writers[int(rng.integers(len(writers)))]
        sentence = choice(values, country)
        return PlantedIdentifiers(sentence=sentence.text, spans=tuple(sentence.spans))


def _format_date(day: datetime, country: str, language: str, rng: np.random.Generator) -> str:
    style = int(rng.integers(3))
    if language == "es":
        if style == 0:
            return f"{day.day} de {_MONTHS_ES[day.month - 1]} de {day.year}"
        return day.strftime("%d/%m/%Y" if style == 1 else "%d-%m-%y")
    if style == 0:
        return day.strftime("%d %b %Y").lstrip("0")
    if country == "US":
        return day.strftime("%m/%d/%Y")
    return day.strftime("%d/%m/%Y" if style == 1 else "%d.%m.%Y")


_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_CURP_STATES = (
    "AS",
    "BC",
    "CH",
    "CL",
    "DF",
    "GR",
    "GT",
    "JC",
    "MC",
    "MN",
    "NL",
    "OC",
    "PL",
    "QT",
    "SP",
    "VZ",
    "YN",
)
_CONSONANTS = "BCDFGHJKLMNPQRSTVWXYZ"


def _national_id(fake: Faker, country: str, *, birth: datetime, sex: str, rng: np.random.Generator) -> str:
    # Spanish and Mexican ids are built here: Faker's es_ES/es_MX providers draw from the global
    # `random` module, which would break the world's determinism.
    if country == "ES":
        number = int(rng.integers(0, 100_000_000))
        if rng.random() < 0.7:
            return f"{number:08d}{_DNI_LETTERS[number % 23]}"  # DNI
        prefix = int(rng.integers(0, 3))
        body = number % 10_000_000
        return f"{'XYZ'[prefix]}{body:07d}{_DNI_LETTERS[(prefix * 10_000_000 + body) % 23]}"  # NIE
    if country == "MX":
        letters = "".join(chr(ord("A") + int(rng.integers(26))) for _ in range(4))
        state = _CURP_STATES[int(rng.integers(len(_CURP_STATES)))]
        inner = "".join(_CONSONANTS[int(rng.integers(len(_CONSONANTS)))] for _ in range(3))
        century = "0" if birth.year < 2000 else "A"
        sex_letter = "H" if sex == "M" else "M"
        return f"{letters}{birth:%y%m%d}{sex_letter}{state}{inner}{century}{int(rng.integers(10))}"
    if country in ("US", "CA", "GB"):
        return str(fake.ssn())
    return ""


def _label(country: str, kind: str) -> str:
    labels = {
        NATIONAL_ID: {"ES": "DNI", "MX": "CURP", "US": "SSN", "CA": "SIN", "GB": "NI no."},
        RECORD_NUMBER: {"ES": "NHC", "MX": "expediente", "GB": "hospital no.", "IE": "MRN"},
    }
    return labels[kind].get(country, "MRN" if kind == RECORD_NUMBER else "ID")


_Values = dict[str, str]


def _en_header(v: _Values, country: str) -> _Sentence:
    s = _Sentence().say("Pt: ").put(NAME, v[NAME]).say(", DOB ").put(DATE_OF_BIRTH, v[DATE_OF_BIRTH])
    return s.say(f", {_label(country, RECORD_NUMBER)} ").put(RECORD_NUMBER, v[RECORD_NUMBER]).say(".")


def _en_contact(v: _Values, country: str) -> _Sentence:
    s = _Sentence().say("Family (").put(NAME, v[NAME]).say("'s mother) can be reached on ")
    return s.put(PHONE, v[PHONE]).say(" or ").put(EMAIL, v[EMAIL]).say(".")


def _en_address(v: _Values, country: str) -> _Sentence:
    s = _Sentence().say("Patient ").put(NAME, v[NAME]).say(" lives at ").put(ADDRESS, v[ADDRESS])
    return s.say(", about an hour from us.")


def _en_insurance(v: _Values, country: str) -> _Sentence:
    s = (
        _Sentence()
        .say("For the referral: ")
        .put(NAME, v[NAME])
        .say(", born ")
        .put(DATE_OF_BIRTH, v[DATE_OF_BIRTH])
    )
    if v[NATIONAL_ID]:
        s.say(f", {_label(country, NATIONAL_ID)} ").put(NATIONAL_ID, v[NATIONAL_ID])
    return s.say(", tel ").put(PHONE, v[PHONE]).say(".")


def _es_header(v: _Values, country: str) -> _Sentence:
    s = _Sentence().say("Paciente: ").put(NAME, v[NAME]).say(", FN ").put(DATE_OF_BIRTH, v[DATE_OF_BIRTH])
    return s.say(f", {_label(country, RECORD_NUMBER)} ").put(RECORD_NUMBER, v[RECORD_NUMBER]).say(".")


def _es_identity(v: _Values, country: str) -> _Sentence:
    s = _Sentence().say("Pcte ").put(NAME, v[NAME])
    if v[NATIONAL_ID]:
        s.say(f", {_label(country, NATIONAL_ID)} ").put(NATIONAL_ID, v[NATIONAL_ID])
    return s.say(", tel. ").put(PHONE, v[PHONE]).say(".")


def _es_address(v: _Values, country: str) -> _Sentence:
    s = _Sentence().say("Domicilio de ").put(NAME, v[NAME]).say(": ").put(ADDRESS, v[ADDRESS])
    return s.say(". Correo del familiar: ").put(EMAIL, v[EMAIL]).say(".")


def _es_birth(v: _Values, country: str) -> _Sentence:
    s = (
        _Sentence()
        .say("Se trata de ")
        .put(NAME, v[NAME])
        .say(f", {v['born_es']} el ")
        .put(DATE_OF_BIRTH, v[DATE_OF_BIRTH])
    )
    return s.say(f" ({_label(country, RECORD_NUMBER)} ").put(RECORD_NUMBER, v[RECORD_NUMBER]).say(").")


_ENGLISH = (_en_header, _en_contact, _en_address, _en_insurance)
_SPANISH = (_es_header, _es_identity, _es_address, _es_birth)
