"""Postal addresses in English and Spanish, found from where they start and walked to where they end.

An address starts at a street ("86525 Holden Shoal", "Calle Antonia Robles 2"), a unit ("Flat 14Q",
"Level 6") or an address word ("lives at", "domicilio:"). From there the walk takes capitalised
words, numbers, postcodes, commas and place-name particles ("San Héctor de la Montaña") and stops
at a sentence end or at running lower-case text ("..., NSW, 2922, about an hour from us").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from ml.privacy.kinds import ADDRESS

_STREET_SUFFIXES = (
    "Street|St|Road|Rd|Avenue|Ave|Av|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Boulevard|Blvd|Way|Terrace|Tce"
    "|Crescent|Cres|Close|Grove|Gardens|Square|Sq|Parade|Highway|Hwy|Parkway|Pkwy|Circle|Cir|Trail"
    "|Row|Walk|Mews|Hill|Hills|View|Rise|Quay|Quays|Wharf|Esplanade|Track|Line|Loop|Pike|Path|Heights"
    "|Park|Green|Mall|Gate|Gateway|Vale|Meadow|Meadows|Ridge|Bridge|Junction|Junctions|Crossing|Cove"
    "|Glen|Mission|Orchard|Summit|Tunnel|Well|Wells|Dale|Gap|Shoal|Shoals|Trafficway|Quad|Quadrant"
    "|Run|Estate|Valley|Fields|Common|Point|Port|Manor|Lodge|Corner|Turnpike|Expressway|Freeway"
    "|Alley|Arcade|Bay|Bend|Bluff|Branch|Brook|Burg|Bypass|Camp|Canyon|Cape|Causeway|Center|Centre"
    "|Cliff|Club|Creek|Crest|Curve|Dam|Divide|Ferry|Field|Flat|Flats|Ford|Forest|Forge|Fork|Fort"
    "|Garden|Harbor|Harbour|Haven|Hollow|Inlet|Island|Isle|Key|Knoll|Lake|Landing|Light|Lock|Mill"
    "|Mills|Motorway|Mount|Mountain|Neck|Oval|Overpass|Pass|Passage|Pine|Pines|Plain|Plains|Plaza"
    "|Prairie|Radial|Ramp|Ranch|Rapid|Rapids|Rest|River|Route|Shore|Shores|Skyway|Spring|Springs"
    "|Spur|Station|Stream|Throughway|Trace|Trak|Underpass|Union|Viaduct|Villa|Village|Ville|Vista"
    "|Drives|Streets|Roads|Courts|Squares|Crossroad|Grange|Chase|Approach|Promenade|Broadway|Rue"
)
_STREET_TYPES_ES = (
    r"Calle|C/|Avenida|Avda\.?|Av\.|Paseo|Plaza|Pza\.?|Camino|Carretera|Ctra\.?|Ronda|V[ií]a"
    r"|Traves[ií]a|Glorieta|Cañada|Pasaje|Callej[oó]n|Andador|Peatonal|Circunvalaci[oó]n"
    r"|Prolongaci[oó]n|Calzada|Privada|Cerrada|Boulevard|Bulevar|Blvd\.?|Perif[eé]rico|Eje vial"
    r"|Continuaci[oó]n|Corredor|Retorno|Ampliaci[oó]n|Diagonal|Alameda|Rambla|Urbanizaci[oó]n"
    r"|Urb\.|Colonia|Col\.|Barrio|Manzana|Cuesta|Ribera|Muelle|Partida|Pol[ií]gono"
)
_UNITS = (
    r"Flat|Apt\.?|Apartment|Unit|Suite|Ste\.?|Level|Studio|Floor|Piso|Puerta|Interior|Int\.|Depto\.?"
    r"|Departamento|Dpto\.?|Bloque|Portal|Escalera|Box|PO Box|P\.O\. Box"
)
_CAP = r"[A-ZÀ-ÖØ-Þ][\w'\u2019.-]*"
_NAME_OR_NUMBER = r"(?:[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]|\d)"
_STARTS = re.compile(
    "|".join(
        (
            rf"\b\d{{1,6}}[A-Za-z]?(?:[-/]\d{{1,4}})?,? (?:{_CAP} ){{1,4}}(?:{_STREET_SUFFIXES})\b",
            # "C/ FG de 12" is "con FG de 12": the street name must look like a name or a number
            rf"(?<![\w.])(?:{_STREET_TYPES_ES}) (?:(?:de|del) (?:la |las |los )?)?{_NAME_OR_NUMBER}",
            rf"\b(?:{_UNITS}) \d{{1,5}}[A-Za-z]?\b",
        )
    )
)
# Words after which an address follows; the address begins after them.
_ADDRESS_CUES = re.compile(
    r"(?i:\b(?:lives at|living at|resides at|residing at|address(?: is)?|home address|domicilio"
    r"(?: (?:en|de [^:\n]{1,60}))?|direcci[oó]n|vive en|reside en|con domicilio en))\s*:?\s*"
    r"(?=[A-ZÀ-ÖØ-Þ\d])"
)
_POSTCODE = re.compile(
    r"^(?:\d{4,5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|[A-Z]\d[A-Z] ?\d[A-Z]\d"
    r"|[A-Z]\d{2} ?[A-Z\d]{4}|[A-Z]\d[A-Z]|\d[A-Z]\d|[A-Z]\d{2}|[A-Z\d]{4})$"
)
_PARTICLES = frozenset({"de", "del", "la", "las", "los", "el", "y", "of", "the", "upon", "on"})
_ABBREVIATIONS = frozenset(
    {
        "apt",
        "st",
        "av",
        "avda",
        "no",
        "nº",
        "núm",
        "num",
        "col",
        "int",
        "depto",
        "dpto",
        "edif",
        "esc",
        "blvd",
        "rd",
        "ave",
        "mt",
        "ft",
        "sta",
        "pto",
        "edo",
        "mz",
        "lt",
        "ste",
        "ctra",
        "pza",
        "urb",
        "po",
        "p.o",
        "bldg",
        "fl",
    }
)
_TOKEN = re.compile(r"[^\s,;:()\[\]]+|[,;:()\[\]]")
_STOPS = frozenset({";", ":", "(", ")", "[", "]"})
_MAX_TOKENS = 24
_MAX_LOWER_RUN = 2  # "San Francisco los altos, CHIS": a short lower-case stretch inside a place name


@dataclass(frozen=True, slots=True)
class _Walk:
    end: int
    content: int  # capitalised words, numbers and codes taken
    parts: int  # comma-separated parts ("86525 Holden Shoal", "West Paul", "PA 70729")
    has_street: bool


class AddressRecognizer(LocalRecognizer):
    """Street addresses, anchored on a street, a unit or an address word, walked to their end."""

    def __init__(self, language: str) -> None:
        super().__init__(supported_entities=[ADDRESS], supported_language=language, name="AddressRecognizer")

    def load(self) -> None:
        """Nothing to load: rules only."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        covered_until = -1
        for start, cued in sorted(_starts(text)):
            if start < covered_until:
                continue
            walk = _walk(text, start)
            if not _is_address(text[start : walk.end], walk, cued=cued):
                continue
            covered_until = walk.end
            results.append(
                RecognizerResult(
                    entity_type=ADDRESS,
                    start=start,
                    end=walk.end,
                    score=0.85 if cued or walk.has_street else 0.6,
                )
            )
        return results


def _starts(text: str) -> Iterator[tuple[int, bool]]:
    for match in _STARTS.finditer(text):
        yield match.start(), False
    for match in _ADDRESS_CUES.finditer(text):
        yield match.end(), True


def _walk(text: str, start: int) -> _Walk:
    """Take address tokens from `start` until a sentence end, a bracket or running lower-case text."""
    end, content, parts, lower_run, has_street, comma = start, 0, 1, 0, False, False
    for n, token in enumerate(_TOKEN.finditer(text, start, min(len(text), start + 200))):
        word = token.group()
        if n >= _MAX_TOKENS or word in _STOPS or (n > 0 and "/" in word):
            break  # a "/" after the start is a date or a ratio ("on 12/26/96"), not an address
        if word == ",":
            comma = content > 0
            continue
        bare = word.rstrip(".")
        sentence_end = word.endswith(".") and not _keeps_period(bare)
        if bare.lower() in _PARTICLES or (bare[:1].islower() and not any(c.isdigit() for c in bare)):
            lower_run += 1
            if lower_run > _MAX_LOWER_RUN or sentence_end:
                break
            continue
        if lower_run and bare.isdigit() and len(bare) <= 3:
            break  # "reside en España desde hace 7 años": the number belongs to the sentence
        lower_run = 0
        content += 1
        parts += comma
        comma = False
        has_street = has_street or _is_street_word(bare)
        end = token.start() + len(bare) if sentence_end else token.end()
        if sentence_end:
            break
    return _Walk(end, content, parts, has_street)


def _keeps_period(bare: str) -> bool:
    """A period after an abbreviation or an initial ("Apt.", "Q. ROO") does not end the address."""
    return bare.lower() in _ABBREVIATIONS or (len(bare) == 1 and bare.isalpha())


def _is_street_word(word: str) -> bool:
    return re.fullmatch(rf"(?:{_STREET_SUFFIXES})|(?:{_STREET_TYPES_ES})", word) is not None


def _is_address(span: str, walk: _Walk, *, cued: bool) -> bool:
    """An address has a number and more than a street: a locality or a postcode after it.

    "4 Chamber View" or "Diagonal 1" alone are anatomy; "42 Wallaby Way, Sydney NSW 2000" is not.
    """
    if walk.content < 2 or not any(c.isdigit() for c in span):
        return False
    if cued:
        return True
    last = _TOKEN.findall(span)[-1]
    ends_in_postcode = _POSTCODE.match(last) is not None or re.search(r"\d{4,5}$", span) is not None
    return walk.content >= 3 and (ends_in_postcode or (walk.has_street and walk.parts >= 2))
