"""Pattern recognizers for identifiers Presidio has no (or no fitting) recognizer for.

Presidio's own recognizers are used where they fit (see `engine.py`); the ones here add what
case posts need: Mexican CURP, UK NI numbers with any prefix, record numbers after a label,
dates written out in English or Spanish, phone numbers filtered for clinical text, and an
e-mail recognizer that never goes to the network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from presidio_analyzer import LocalRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    DateRecognizer,
    EmailRecognizer,
    PhoneRecognizer,
    UkNinoRecognizer,
)

from ml.privacy.kinds import DATE, EMAIL, INSURANCE_ID, LICENCE_ID, LOCATION, NATIONAL_ID, PHONE, RECORD_ID

_DATE_SHAPE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{2,4}$")
# Lab ranges and counts with thousands separators: "(4.400.000-5.800.000", "150.000".
_THOUSANDS = re.compile(r"\d\.\d{3}(?:\.\d{3}|\b)")
# Connector words between a label and its value: "MRN: 123", "phone number is 555", "nº de 123".
_GAP = (
    r"(?:\s{0,3}(?:[:#=.]|(?:n[º°o]\.?|no\.|num\.?|number|n[úu]mero|nr\.?|is|es|on|at|of|the|de|del|al|en)"
    r"(?!\w))){0,4}\s{0,3}"  # bounded, so a long run of spaces cannot make the search quadratic
)


class CuedValueRecognizer(LocalRecognizer):
    """A value that counts as an identifier only right after a label ("NHC 1234567", "tel 555 0199").

    Only the value is reported, not the label, so the redacted text keeps "NHC [RECORD_ID]".
    Labels spell out where case matters (acronyms upper case, words wrapped in `(?i:...)`); values
    are case-sensitive, so "DNI 12345678Z del" stops at Z.
    """

    def __init__(
        self,
        *,
        entity: str,
        cue: str,
        value: str,
        score: float,
        language: str,
        name: str,
        min_digits: int = 4,
    ) -> None:
        self._pattern = re.compile(rf"\b(?:{cue})(?!\w){_GAP}(?P<value>{value})")
        self._score = score
        self._min_digits = min_digits
        super().__init__(supported_entities=[entity], supported_language=language, name=name)

    def load(self) -> None:
        """Nothing to load: the pattern is compiled in __init__."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for match in self._pattern.finditer(text):
            value = match.group("value")
            if sum(ch.isdigit() for ch in value) < self._min_digits or _DATE_SHAPE.match(value):
                continue  # "admitted to hospital on 08/20/2003" is a date
            results.append(
                RecognizerResult(
                    entity_type=self.supported_entities[0],
                    start=match.start("value"),
                    end=match.end("value"),
                    score=self._score,
                )
            )
        return results


# --- record numbers -----------------------------------------------------------------------------

RECORD_CUES = (
    r"MRN|MR|UR|URN|ID|Id|NHC|N\.H\.C\.|HC|H\.C\.|NHS|IHI"
    r"|(?i:medical record|record|chart|hospital|hosp\.|patient id|historia(?: cl[ií]nica)?|expediente"
    r"|exp\.|registro|folio|episodio|ref(?:erence)?)"
)
# Health-insurance and social-security numbers: the patient's card, not the hospital's record.
INSURANCE_CUES = (
    r"NSS|NASS|CIPA?|TSI|OHIP"
    r"|(?i:seguridad social|afiliaci[oó]n|tarjeta sanitaria|p[oó]liza|aseguradora|medicare|medicaid"
    r"|health card|insurance(?: id| no\.?| number)?|policy(?: no\.?| number)?|member id)"
)
# An alphanumeric id with an optional letter prefix, a Spanish NSS (28 12345678 40) or a spaced
# NHS number (943 476 5919); spaces are only allowed in those two fixed shapes.
_RECORD_VALUE = r"\d{2} \d{8} \d{2}\b|\d{3} \d{3} \d{4}\b|(?:[A-Z]{1,4}[-/]?)?\d[\d/-]{3,14}\d\b"


def record_id_recognizer(language: str) -> CuedValueRecognizer:
    return CuedValueRecognizer(
        entity=RECORD_ID,
        cue=RECORD_CUES,
        value=_RECORD_VALUE,
        score=0.85,
        language=language,
        min_digits=5,  # "hospital en 2019" is a year, not a record
        name="RecordIdRecognizer",
    )


# --- licence numbers ----------------------------------------------------------------------------

# "NºCol: 28 28 70973", "Nº Col. 08-08-25574", "colegiado nº 282870973", "GMC no. 7012345".
LICENCE_CUES = (
    r"N[º°o]\.?\s?[Cc]ol(?:eg)?\.?|(?i:n[úu]m(?:ero)?\.? (?:de )?colegiad[oa]|colegiad[oa]|col\. n[º°o]"
    r"|licen[cs]e(?: no\.?| number)?|registration(?: no\.?| number)?)|GMC|NPI|DEA"
)
_LICENCE_VALUE = r"\d{1,10}(?:[ -]\d{1,8}){0,3}\b"


def labelled_licence_recognizer(language: str) -> CuedValueRecognizer:
    """A clinician's registration number after its label (Spanish colegiado, GMC, NPI)."""
    return CuedValueRecognizer(
        entity=LICENCE_ID,
        cue=LICENCE_CUES,
        value=_LICENCE_VALUE,
        score=0.85,
        language=language,
        min_digits=5,
        name="LabelledLicenceRecognizer",
    )


def insurance_id_recognizer(language: str) -> CuedValueRecognizer:
    return CuedValueRecognizer(
        entity=INSURANCE_ID,
        cue=INSURANCE_CUES,
        value=_RECORD_VALUE,
        score=0.85,
        language=language,
        min_digits=5,
        name="InsuranceIdRecognizer",
    )


# --- national ids -------------------------------------------------------------------------------

NATIONAL_ID_CUES = (
    r"SSN|SS#|SIN|NI(?: number| no\.?)|NINO|DNI|NIF|NIE|CURP|RFC"
    r"|(?i:social security(?: number| no\.?)?|social insurance(?: number| no\.?)?"
    r"|national insurance(?: number| no\.?)?|documento (?:nacional )?de identidad|c[eé]dula"
    r"|pasaporte|passport|national id)"
)
# Chunks of capitals and digits, joined by single spaces, dots or hyphens ("ZZ 88 70 49 T").
_ID_VALUE = r"[A-Z0-9]+\b(?:[ .-][A-Z0-9]+\b){0,5}"


def labelled_national_id_recognizer(language: str) -> CuedValueRecognizer:
    """Any id-shaped value after an id label: catches DNIs with a mistyped check letter too."""
    return CuedValueRecognizer(
        entity=NATIONAL_ID,
        cue=NATIONAL_ID_CUES,
        value=_ID_VALUE,
        score=0.8,
        language=language,
        min_digits=5,
        name="LabelledNationalIdRecognizer",
    )


_CURP_STATES = (
    "AS|BC|BS|CC|CL|CM|CS|CH|DF|DG|GT|GR|HG|JC|MC|MN|MS|NT|NL|OC|PL|QT|QR|SP|SL|SR|TC|TS|TL|VZ|YN|ZS|NE"
)


class CurpRecognizer(PatternRecognizer):
    """Mexican CURP: 4 letters, birth date, sex, state, 3 consonants, homoclave, check digit.

    The check digit is not verified: a CURP with a typo still identifies the patient.
    """

    PATTERNS: Sequence[Pattern] = (
        Pattern(
            "CURP",
            rf"\b[A-Z]{{4}}\d{{2}}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[HMX](?:{_CURP_STATES})"
            r"[B-DF-HJ-NP-TV-Z]{3}[A-Z0-9]\d\b",
            0.9,
        ),
    )

    def __init__(self, language: str) -> None:
        super().__init__(
            supported_entity=NATIONAL_ID,
            patterns=list(self.PATTERNS),
            supported_language=language,
            global_regex_flags=re.MULTILINE,  # case matters: a CURP is upper case
            name="CurpRecognizer",
        )


class NinoRecognizer(UkNinoRecognizer):
    """UK National Insurance number, prefix rules relaxed.

    Presidio's recognizer rejects prefixes HMRC never issues (ZZ, BG, GB, ...); those still appear
    in placeholder and test records, and an id-shaped string next to a patient is better removed.
    """

    def __init__(self, language: str) -> None:
        super().__init__(
            patterns=[
                Pattern("NINO", r"\b[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", 0.6),
                Pattern("NINO (spaced)", r"\b[A-Z]{2} \d{6} [A-D]\b", 0.6),  # "ZZ 796443 T"
            ],
            supported_language=language,
            supported_entity=NATIONAL_ID,
            name="NinoRecognizer",
        )
        self.global_regex_flags = re.MULTILINE  # upper case only: "ab 12 34 56 c" is rarely an id


# --- dates --------------------------------------------------------------------------------------

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
    r"|enero|ene|febrero|marzo|abril|abr|mayo|junio|julio|agosto|ago|septiembre|setiembre"
    r"|octubre|noviembre|diciembre|dic)\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th|º)?"
_YEAR = r"(?:19|20)\d{2}"


class WrittenDateRecognizer(DateRecognizer):
    """Presidio's numeric dates plus dates with month names ("19 Dec 1950", "3 de marzo de 2020").

    Full dates (day, month and year) and month-year dates ("marzo de 2019") are taken: "3 days
    ago", "March" or "2015" alone stay.
    """

    EXTRA_PATTERNS: Sequence[Pattern] = (
        Pattern("d month yyyy", rf"\b{_DAY}[ -](?:de )?{_MONTHS},?[ -](?:de |del )?{_YEAR}\b", 0.7),
        Pattern("month d, yyyy", rf"\b{_MONTHS} {_DAY},? {_YEAR}\b", 0.7),
        Pattern("dd-mm-yy", r"\b(?:0?[1-9]|[12]\d|3[01])-(?:0?[1-9]|1[0-2])-\d{2}\b", 0.5),
        # month and year: "diciembre-2002", "febrero-07", "septiembre del año 2000", "nov. 2016"
        Pattern(
            "month yyyy",
            rf"\b{_MONTHS}(?:\s(?:de|del|of))?(?:\s(?:año|year))?[\s-](?:(?:19|20)\d{{2}}|\d{{2}})\b",
            0.6,
        ),
    )

    def __init__(self, language: str) -> None:
        super().__init__(
            patterns=[*DateRecognizer.PATTERNS, *self.EXTRA_PATTERNS],
            supported_language=language,
            supported_entity=DATE,
            name="WrittenDateRecognizer",
        )


# Month/day dates without a year, as US notes write them ("admitted 8/23", "NQWMI 5/13"), or
# with one ("8/12/91"), or month/year ("11/92"). Fractions ("1/2 NS"), pain scores ("6/10"),
# ventilator settings ("PSV 10/5", "12/5/40%"), murmurs ("3/6 SEM"), power ("4/5", "5/5"), visual
# acuity ("VA R 6/9") and Apgar scores stay; blood pressures never match (no month above 12).
_MONTH_DAY = re.compile(
    r"(?<![\w/.:-])(?P<m>1[0-2]|0?[1-9])/(?P<d>3[01]|[12]\d|0?[1-9])(?:/(?P<y>(?:19|20)?\d{2}))?"
    r"(?![\w/%:]|\.\d|-\d)"
    r"|(?<![\w/.:-])(?:1[0-2]|0?[1-9])/(?P<yy>[3-9]\d)(?![\w/%:]|\.\d|-\d)"
)
_NOT_DATE_AFTER = re.compile(
    r"^\s?(?i:peep|cm\b|c\b|%|\d+\s?%|ps\b|psv\b|x\s?\d|liters?|l\b|way|amp|ns\b|hrs?\b|hours?|up\b|u\b"
    r"|strength|power|tab|sem\b|murmur|ratio|dose|fio2|abg|mg|ml|cc|units?)"
)
_NOT_DATE_BEFORE = re.compile(
    # ventilator settings a few words back: "PSV 10/5", "CPAP/PS of 10/5", "AC 500x12/5"
    r"(?i:\b(?:ps|psv|cpap|bipap|peep|vent|imv|simv|flowby|ventilation|co/ci|fio2|ac|tv|mode|settings?"
    r"|wean(?:ed|ing)?)\b[^.\n]{0,14}"
    # scores and exam findings right before: "pain 6/10", "Apgar 8/9", "power 4/5", "VA R 6/9"
    r"|\b(?:apgar|gcs|pain|strength|power|motor|grade|murmur|sem|score|rated|rating|ratio|acuity|vision"
    r"|visual|weakness|flexors?|extensors?|ehl|proximal|distal|reflexes|fuerza|paresia|debilidad)"
    r"\W{0,3}(?:(?:of|is|was|de|at)\s)?(?:[LR]\s)?)$"
    r"|\b(?:VA|va)(?: [LR])?\s?$|\b[LR]\s?$"
)
# What makes "9/9" or "9/10" a date despite its shape: the start of a line in a note, a date word.
_DATE_CUE_BEFORE = re.compile(
    r"(?:^|\n)[ \t]*$"
    r"|(?i:\b(?:since|until|arrive[sd]?|arriving|due|dated?|admitted|adm|discharged|d/?c'?d)\s*)$"
)
# "pain 6/10", "rated 3/10", "6/10 cp", "at 8/10 with movement": a score out of ten
_PAIN_NEAR = re.compile(
    r"(?i:\b(?:pain|pressure|discomfort|cp|c/o|rated?|rating|scale|score|level|intensity|dolor|eva|at|of|as"
    r"|is|was|de)\W{0,3}$"
    r"|^\s*(?:cp|pain|ha|headache|discomfort|with|on|dolor)\b)"
)
_MONTH_DAY_YEAR = re.compile(
    r"(?<![\w/.:-])(?:1[0-2]|0?[1-9])-(?:3[01]|[12]\d|0?[1-9])-(?:\d{4}|\d{2})(?![\w/:-]|\.\d)"
)


class MonthDayRecognizer(LocalRecognizer):
    """US month/day dates ("on 8/23"), told apart from scores and settings by shape and context."""

    def __init__(self, language: str) -> None:
        super().__init__(supported_entities=[DATE], supported_language=language, name="MonthDayRecognizer")

    def load(self) -> None:
        """Nothing to load: rules only."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for match in _MONTH_DAY.finditer(text):
            if match.group("yy") is not None:
                if _NOT_DATE_BEFORE.search(text[max(0, match.start() - 30) : match.start()]):
                    continue  # visual acuity "VA 6/36"
            elif not _month_day_is_date(text, match):
                continue
            results.append(
                RecognizerResult(entity_type=DATE, start=match.start(), end=match.end(), score=0.6)
            )
        for match in _MONTH_DAY_YEAR.finditer(text):  # "3-24-17" heads a nursing note
            results.append(
                RecognizerResult(entity_type=DATE, start=match.start(), end=match.end(), score=0.6)
            )
        return results


_BARE_MONTH_DAY = re.compile(r"\d{1,2}/\d{1,2}")


def bare_fraction_is_date(text: str, start: int, end: int) -> bool:
    """For "8/9"-shaped text at text[start:end]: whether it reads as a date (see `MonthDayRecognizer`).

    Anything else (with a year, a month name) is not judged here and counts as a date.
    """
    if not _BARE_MONTH_DAY.fullmatch(text[start:end]):
        return True
    match = _MONTH_DAY.match(text, start)
    if match is None or match.end() != end:
        return False
    if match.group("yy") is not None:  # month/year: "11/92"
        return _NOT_DATE_BEFORE.search(text[max(0, start - 30) : start]) is None
    return _month_day_is_date(text, match)


def _month_day_is_date(text: str, match: re.Match[str]) -> bool:
    month, day, year = int(match.group("m")), int(match.group("d")), match.group("y")
    if year is not None:
        return True
    before = text[max(0, match.start() - 30) : match.start()]
    after = text[match.end() : match.end() + 20]
    pain_scale = day == 10 and month <= 10 and (_PAIN_NEAR.search(before) or _PAIN_NEAR.match(after))
    fraction_like = (day <= 5 and month < day) or pain_scale or month == day
    if fraction_like and not _DATE_CUE_BEFORE.search(before):
        return False  # 1/2, 3/4, power 4/5, pain 6/10, strength 5/5
    if _NOT_DATE_AFTER.match(text[match.end() : match.end() + 12]):
        return False
    return _NOT_DATE_BEFORE.search(before) is None


# --- places -------------------------------------------------------------------------------------

# Where the patient lives or comes from, after a residence word: "lives in Springfield",
# "vive en Alcalá de Henares", "natural de Lugo". Countries ("reside en España") stay.
_PLACE_CUE = re.compile(
    r"(?:\b(?i:lives in|living in|resides in|residing in|resident of|moved (?:here )?from|hometown"
    r"|home town of|vive en|viven en|reside en|residente en|natural de|procedente de|vecin[oa] de"
    r"|localidad|provincia|municipio|ciudad|poblaci[oó]n)\s*:?\s+)"
    r"(?P<place>[A-ZÀ-ÖØ-Þ][\w'\u2019-]+"
    r"(?:\s(?:de(?:l| la| las| los)?|del|la|el|upon|on)?\s?[A-ZÀ-ÖØ-Þ][\w'\u2019-]+){0,3})"
)
_POSTCODE_CUE = re.compile(
    r"\b(?:C\.P\.|CP|(?i:c[oó]digo postal|zip(?: code)?|postcode|post code))\s*:?\s*"
    r"(?P<place>\d{5}(?:-\d{4})?)\b"
)
_COUNTRIES = frozenset(
    """
    españa spain méxico mexico estados unidos usa america eeuu francia france portugal italia italy
    alemania germany marruecos morocco argentina colombia venezuela perú peru chile ecuador bolivia
    cuba uruguay paraguay brasil brazil china india pakistán pakistan rumanía rumania romania
    ucrania ukraine rusia russia canadá canada inglaterra england reino unido uk australia irlanda
    ireland escocia scotland gales wales nigeria senegal argelia algeria honduras guatemala
    nicaragua panamá panama república dominicana puerto rico filipinas philippines japón japan
    bélgica belgium holanda netherlands suiza switzerland austria suecia sweden noruega norway
    dinamarca denmark polonia poland grecia greece turquía turkey egipto egypt túnez tunisia
    mauritania mali gambia ghana guinea camerún congo angola sudáfrica kenia etiopía bulgaria
    lituania letonia georgia armenia irán iraq irak siria líbano israel jordania arabia emiratos
    bangladesh nepal corea vietnam tailandia indonesia malasia australia zelanda haití jamaica
    costa
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def is_country(place: str) -> bool:
    """Whether a place name is (or starts with) a country: countries are not identifiers here."""
    words = place.lower().split()
    return bool(words) and (" ".join(words) in _COUNTRIES or words[0] in _COUNTRIES)


class PlaceRecognizer(LocalRecognizer):
    """A town or city after a residence word ("vive en Móstoles"), never a country."""

    def __init__(self, language: str) -> None:
        super().__init__(supported_entities=[LOCATION], supported_language=language, name="PlaceRecognizer")

    def load(self) -> None:
        """Nothing to load: rules only."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for match in _PLACE_CUE.finditer(text):
            place = match.group("place")
            if is_country(place):
                continue
            results.append(
                RecognizerResult(
                    entity_type=LOCATION, start=match.start("place"), end=match.end("place"), score=0.6
                )
            )
        for match in _POSTCODE_CUE.finditer(text):
            results.append(
                RecognizerResult(
                    entity_type=LOCATION, start=match.start("place"), end=match.end("place"), score=0.8
                )
            )
        return results


# --- phones -------------------------------------------------------------------------------------

PHONE_CUES = (
    r"(?i:tel|tel[eé]fono|telephone|phone|mobile|mob|cell|cellphone|m[oó]vil|celular|cel|whatsapp"
    r"|fax|contact|contacto|reached|reach|call|llamar|number|n[úu]mero)"
)
_PHONE_CUE_BEFORE = re.compile(rf"\b(?:{PHONE_CUES})\b[^\n;]{{0,30}}$")
_PHONE_GROUPS = re.compile(r"^\+?[\d ]*\(?\d{3}\)?[. ]\d{3}[. ]\d{4}")  # 607.903.9619 is a phone
_CLAUSE_BREAK = re.compile(r"[.,;]\s")  # "MRN 86971549. 72-year-old" is two numbers
# Countries casematch's doctors post from; phonenumbers needs a region for national formats.
PHONE_REGIONS = ("US", "CA", "GB", "IE", "AU", "NZ", "ZA", "ES", "MX")


def plausible_phone(text: str, start: int, end: int) -> bool:
    """Rule out what phonenumbers' lenient matcher takes for a phone in clinical text.

    Blood pressures ("158/96"), dates, numbers across a clause break and short numbers go; numbers
    under ten digits need a
    leading '+' or a phone word shortly before them ("tel", "reached on").
    """
    raw = text[start:end]
    digits = sum(ch.isdigit() for ch in raw)
    if "/" in raw or not 7 <= digits <= 15 or _DATE_SHAPE.match(raw) or _CLAUSE_BREAK.search(raw):
        return False
    if (_THOUSANDS.search(raw) and not _PHONE_GROUPS.match(raw)) or raw.count("(") != raw.count(")"):
        return False
    if digits >= 10 or raw.startswith(("+", "00")):
        return True
    return _PHONE_CUE_BEFORE.search(text[max(0, start - 40) : start]) is not None


class ClinicalPhoneRecognizer(PhoneRecognizer):
    """Presidio's phonenumbers-based recognizer, lenient, filtered by `plausible_phone`.

    The strict (valid numbers only) setting misses about a quarter of real-looking numbers
    (unassigned area codes, extensions); the lenient one also takes vital signs, hence the filter.
    """

    def __init__(self, language: str) -> None:
        super().__init__(
            supported_language=language,
            supported_entity=PHONE,
            supported_regions=PHONE_REGIONS,
            leniency=0,
            name="ClinicalPhoneRecognizer",
        )

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if not _SEVEN_DIGITS.search(text):
            return []  # most posts: phonenumbers' nine-region scan would find nothing `plausible_phone` keeps
        found: list[RecognizerResult] = super().analyze(text, entities)  # it does not use NLP artifacts
        for result in found:
            raw = text[result.start : result.end]
            if raw.startswith("(") and ")" not in raw:
                result.start += 1  # "(135-442-9738)": the bracket opens the aside, not the area code
        return [r for r in found if plausible_phone(text, r.start, r.end)]


# seven digits apart only by phone punctuation: the least a number `plausible_phone` accepts holds
_SEVEN_DIGITS = re.compile(r"\d(?:[\s().+/-]*\d){6}")


_PHONE_VALUE = r"(?:\+|00)?\(?\d[\d().\s-]{5,18}\d(?:\s?(?:x|ext\.?|extn\.?)\s?\d{1,6})?"


def labelled_phone_recognizer(language: str) -> CuedValueRecognizer:
    """Phone-shaped digits after a phone word, for numbers phonenumbers cannot parse at all."""
    return CuedValueRecognizer(
        entity=PHONE,
        cue=PHONE_CUES,
        value=_PHONE_VALUE,
        score=0.6,
        language=language,
        min_digits=7,
        name="LabelledPhoneRecognizer",
    )


# --- e-mail -------------------------------------------------------------------------------------

_TOP_LEVEL = re.compile(r"\.[A-Za-z]{2,24}$")


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail pattern without its tldextract check.

    tldextract downloads the public-suffix list on first use; the service runs offline, so the
    domain is only required to end in an alphabetic top-level label.
    """

    def __init__(self, language: str) -> None:
        super().__init__(supported_language=language, supported_entity=EMAIL, name="OfflineEmailRecognizer")

    def validate_result(self, pattern_text: str) -> bool:
        return _TOP_LEVEL.search(pattern_text) is not None
