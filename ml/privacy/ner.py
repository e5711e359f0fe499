"""The trained token classifiers (one spaCy NER pipeline per language) as a Presidio recognizer.

The pipelines are trained by `casematch train-deid` (ml/training/deid_ner.py) and shipped inside
the package, in `ml/resources/deid_ner/<language>/`, so they load offline. The analyzer's NLP
engine runs the pipeline once per post; this recognizer only reads the entities off that Doc
and vetoes the few shapes the rules know better (eponyms, bare years, ages).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import spacy
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from ml.privacy.cued_names import common_words, is_typo_of_common
from ml.privacy.eponyms import HEAD_BEFORE, is_eponym, next_word_is_disease_head
from ml.privacy.kinds import (
    ADDRESS,
    DATE,
    INSURANCE_ID,
    KINDS,
    LICENCE_ID,
    LOCATION,
    NAME,
    NATIONAL_ID,
    PHONE,
    RECORD_ID,
)
from ml.privacy.names import LEADING_NOISE, TITLE
from ml.privacy.recognizers import bare_fraction_is_date, is_country
from ml.text import fold

logger = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[1] / "resources" / "deid_ner"
NER_SCORE = 0.8  # below the labelled rules (0.85): on the same span, the rule names the kind

_BARE_YEAR = re.compile(r"(?:19|20)\d{2}s?")
_WORDLESS = re.compile(r"[\W_]+")
_GLUED_LABEL = re.compile(r"[^\W\d_][\wº°.]*:\s*(?=\w)")
_TRAILING = frozenset(" \t\r,;:(")
# An address starts with a street word and a name or number ("C/ Escuelas", "Avda. Valdecilla
# sn"; not "c/ antecedente de ...", Spanish shorthand for "con", nor "C/ FG de 12"), or else has a
# number or "s/n" ("42 Wallaby Way").
_STREET_WORD = re.compile(
    r"(?i:Calle|C/\.?|Avda\.?|Avenida|Av\.|Paseo|Plaza|Pza\.?|Camino|Carretera|Ctra\.?|Ronda|Traves[ií]a"
    r"|Glorieta|Urb\.|Urbanizaci[oó]n|Prolongaci[oó]n|Pol[ií]gono|Rambla|Pasaje)\s*"
)
_STREET_NAME = re.compile(r"(?:(?:de|del|de la|de las|de los)\s+)?(?:[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]|\d)")
_NUMBERED = re.compile(r"\d|(?i:\bs\s?/\s?n\b|\bsn\b)")
_TITLE_TOKEN = re.compile(rf"{TITLE}\.?", re.IGNORECASE)
_PARTICLES = frozenset({"de", "del", "la", "las", "los", "y", "el", "of", "the", "upon", "on", "s/n", "sn"})
# A period after a postcode-long number or a lower-case word, then a capital: a new sentence
# ("Ávila, 08982. Correo del familiar"); after an abbreviation or a house number it goes on
# ("Avda. Valdecilla", "C Bizkarreta, 1. Bajo A").
_SENTENCE_END = re.compile(r"(?:\d{4}|(?<![^\W\d_])[a-zß-öø-ÿ]{4,})\.\s+(?=[A-ZÀ-ÖØ-Þ¿¡])")
# A date the model found that is only digits must have a date's shape: "1719/182" is not one.
_NUMERIC = re.compile(r"[\d\s/.-]+")
_NUMERIC_DATE = re.compile(
    # typed as written: "16/018/1961", "24/08//1979"
    r"\d{1,2}\s?[/.-]{1,2}\s?\d{1,3}(?:\s?[/.-]{1,2}\s?\d{2,4})?|\d{4}[/.-]\d{1,2}[/.-]\d{1,2}"
    r"|\d{1,2}[/.-]\d{4}"
)
# "28yo", "45 y/o", "78 años": an age, which stays (doctors need it), not a date
_AGE = re.compile(r"\d{1,3}\s?(?:yo|y/o|y\.o\.|yrs?|years?|años|a)\.?", re.IGNORECASE)
# Where a capital letter says nothing: the start of the text, a line or a sentence
_CAPITAL_BY_POSITION = re.compile(r"(?:^|[.!?:\n])\s*$")
_POSTCODE = re.compile(r"(?<!\d)(?:\d{5}(?:-\d{4})?|\d{4})(?!\d)")
_NUMBERS = frozenset({PHONE, RECORD_ID, INSURANCE_ID, LICENCE_ID, NATIONAL_ID})
_LONGEST = 120  # characters; a longer "entity" is a model that ran away, not an identifier


class ModelMissingError(FileNotFoundError):
    """A language's trained de-identification pipeline is not where it should be."""


def default_model_dir(language: str) -> Path:
    return MODELS_DIR / language


def load_pipeline(directory: Path) -> Language:
    """The trained pipeline in `directory` (tokenizer, tok2vec, ner); nothing is downloaded."""
    if not (directory / "config.cfg").exists():
        raise ModelMissingError(
            f"no de-identification model in {directory}: train it with `casematch train-deid`"
        )
    return spacy.load(directory)


def model_fingerprint(directory: Path) -> str:
    """SHA-256 over every file of the model folder (relative path and content digest)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode())
    return digest.hexdigest()


def recorded_fingerprint(directory: Path) -> str | None:
    """The fingerprint the training run wrote beside the model (`<language>.json`), if any."""
    meta = directory.parent / f"{directory.name}.json"
    if not meta.exists():
        return None
    value = json.loads(meta.read_text()).get("fingerprint")
    return str(value) if value else None


class NerRecognizer(EntityRecognizer):
    """Entities of the trained pipeline, read off the Doc the NLP engine already made."""

    def __init__(
        self, language: str, *, labels: Mapping[str, str] | None = None, score: float = NER_SCORE
    ) -> None:
        self._kind_of = dict(labels) if labels is not None else {k: k for k in KINDS}
        self._score = score
        super().__init__(
            supported_entities=sorted(set(self._kind_of.values())),
            supported_language=language,
            name="NerRecognizer",
        )

    def load(self) -> None:
        """Nothing to load: the NLP engine owns the pipeline."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        doc = nlp_artifacts.tokens if nlp_artifacts is not None else None
        if not isinstance(doc, Doc):
            return []
        results = []
        for entity in doc.ents:
            kind = self._kind_of.get(entity.label_)
            if kind is None:
                continue
            span = _tidy(entity, kind)
            if span is None or not keep_entity(text, span, kind):
                continue
            start, end = trimmed(text, span.start_char, span.end_char)
            if end > start:
                results.append(RecognizerResult(entity_type=kind, start=start, end=end, score=self._score))
        return results


def _tidy(entity: Span, kind: str) -> Span | None:
    """The entity without stray words at its edges: titles and person words before a name ("Pcte",
    "Dr.": annotators leave them out), and running lower-case words after a name or an address
    ("John can", "42 Wallaby Way, Sydney NSW 2000 with his wife")."""
    start, end = entity.start, entity.end
    doc = entity.doc
    if kind == NAME:
        while start < end and (
            _TITLE_TOKEN.fullmatch(doc[start].text) or fold(doc[start].text) in LEADING_NOISE
        ):
            start += 1
    # In a capitalised name a lower-case word is the sentence going on; in "dr. lowell" it is not.
    lower_ends_name = kind == NAME and start < end and not doc[start].is_lower
    if kind in (NAME, ADDRESS, LOCATION):
        for i in range(start + 1, end):
            token = doc[i]
            if (
                token.is_lower
                and token.is_alpha
                and token.text not in _PARTICLES
                and (token.is_stop or lower_ends_name)
            ):
                end = i
                break
    if kind in _NUMBERS:  # "+34 612 345 678 ayer": a number ends at its last digit
        while end > start and not any(c.isdigit() for c in doc[end - 1].text):
            end -= 1
    if kind == NAME and any(any(c.isdigit() for c in t.text) for t in doc[start:end]):
        return None  # "Aporta 12345678Z": a confused model, not a name
    if kind == NAME and doc.lang_ == "en":
        start, end = _without_common_words(doc, start, end)
    while end > start and (doc[end - 1].is_punct or doc[end - 1].is_space) and doc[end - 1].text != ")":
        end -= 1
    return doc[start:end] if end > start else None


def _address_shaped(words: str) -> bool:
    street = _STREET_WORD.match(words)
    if street is None:
        return _NUMBERED.search(words) is not None
    if _STREET_NAME.match(words, street.end()):
        return True
    # "Calle de finisterre 15": a lower-case street name, after a capitalised street word, numbered
    lower_named = words[:1].isupper() and words[street.end() : street.end() + 1].islower()
    return lower_named and _NUMBERED.search(words) is not None


def _without_common_words(doc: Doc, start: int, end: int) -> tuple[int, int]:
    """A name in an all upper or all lower case note without the common words at its edges
    ("JOHN STATES", "MOTRIN", "HIM"): there the model has no capital letters to go by.
    Title-case words are the model's to judge ("Will Cole")."""
    words = common_words()

    def common(token: Token) -> bool:
        lowered = token.text.lower()
        uncased = token.is_upper or token.is_lower
        return uncased and token.is_alpha and (lowered in words or is_typo_of_common(lowered))

    while start < end and (common(doc[start]) or doc[start].is_punct):
        start += 1
    while end > start and (common(doc[end - 1]) or doc[end - 1].is_punct):
        end -= 1
    return start, end


def trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The entity without what the tokenizer glued to it: a field label before a colon
    ("Ingreso:17/07/2010", "NºCol:28 28 49712") and anything past the end of its line
    ("Dr. Héctor Pastor\nServicio de Urología")."""
    newline = text.find("\n", start, end)
    if newline != -1:
        end = newline
    sentence_end = _SENTENCE_END.search(text, start, end)
    if sentence_end is not None:
        end = text.index(".", sentence_end.start())
    label = _GLUED_LABEL.match(text, start, end)
    if label is not None:
        start = label.end()
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    return start, end


def keep_entity(text: str, entity: Span, kind: str) -> bool:
    """Whether an entity the model found should go; False for what is clinical text after all."""
    words = entity.text
    if not _WORDLESS.sub("", words) or len(words) > _LONGEST:
        return False
    digits = sum(c.isdigit() for c in words)
    if (kind == PHONE and digits < 7) or (kind in _NUMBERS and digits < 3):
        return False  # "x45 minutes"
    if kind == ADDRESS and not _address_shaped(words):
        return False
    if kind == NAME:
        tokens = [t.text for t in entity if t.is_alpha]
        if tokens and all(is_eponym(t) for t in tokens):
            return False  # "Fontan", "Guillain-Barré"
        after = text[entity.end_char :]
        before = text[max(0, entity.start_char - 40) : entity.start_char]
        if next_word_is_disease_head(after) or HEAD_BEFORE.search(before):
            return False  # "Wilson disease", "enfermedad de Crohn"
    if kind == LOCATION and is_country(words):
        return False  # "Marruecos": countries stay
    if kind == LOCATION and digits and not _POSTCODE.search(words):
        return False  # "Lote 12345678A": a place's only numbers are its postcode
    if kind == DATE and _NUMERIC.fullmatch(words) and not _NUMERIC_DATE.fullmatch(words.strip()):
        return False
    if kind == DATE and _AGE.fullmatch(words.strip()):
        return False
    if kind == NAME and _common_word_capitalised_by_position(text, entity):
        return False  # "White fingertips in the cold" as a post's title
    if kind == NAME and len(_WORDLESS.sub("", words)) < 2:
        return False  # "S.": an initial alone
    if kind == DATE and not bare_fraction_is_date(text, entity.start_char, entity.end_char):
        return False  # "Apgar 8/9", "fuerza 4/5"
    # a bare year is not a full date
    return not (kind in (DATE, LOCATION) and _BARE_YEAR.fullmatch(words.strip()))


def _common_word_capitalised_by_position(text: str, entity: Span) -> bool:
    """One title-case English word that is a common word, where any word would be capitalised."""
    tokens = [t for t in entity if t.is_alpha]
    if entity.doc.lang_ != "en" or len(tokens) != 1 or not tokens[0].is_title:
        return False
    return tokens[0].lower_ in common_words() and bool(
        _CAPITAL_BY_POSITION.search(text[max(0, entity.start_char - 20) : entity.start_char])
    )
