"""How the same clinical text differs by where its author trained: spelling, terms, shorthand, typos."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence

import numpy as np

# US stem -> UK stem; matched at the start of a word, first-letter case preserved.
_US_TO_UK = (
    ("diarrhea", "diarrhoea"),
    ("anemia", "anaemia"),
    ("anemic", "anaemic"),
    ("hemoglobin", "haemoglobin"),
    ("hemorrhag", "haemorrhag"),
    ("hematolog", "haematolog"),
    ("hematoma", "haematoma"),
    ("hematuria", "haematuria"),
    ("hemolys", "haemolys"),
    ("hemolytic", "haemolytic"),
    ("pediatric", "paediatric"),
    ("edema", "oedema"),
    ("esophag", "oesophag"),
    ("tumor", "tumour"),
    ("leukemia", "leukaemia"),
    ("orthopedic", "orthopaedic"),
    ("gynecolog", "gynaecolog"),
    ("estrogen", "oestrogen"),
    ("behavior", "behaviour"),
    ("fiber", "fibre"),
    ("center", "centre"),
    ("ischemi", "ischaemi"),
    ("anesthe", "anaesthe"),
    ("septicemia", "septicaemia"),
    ("acetaminophen", "paracetamol"),
    ("epinephrine", "adrenaline"),
    ("albuterol", "salbutamol"),
    ("emergency room", "A&E"),
)

# Spain -> Mexico clinical terms, article-aware so that gender agreement survives the swap.
_ES_TO_MX = (
    ("un TAC", "una tomografía"),
    ("el TAC", "la tomografía"),
    ("TAC", "TC"),
    ("una ecografía", "un ultrasonido"),
    ("la ecografía", "el ultrasonido"),
    ("ecografía", "USG"),
    ("el hemograma", "la biometría hemática"),
    ("hemograma", "BH"),
    ("una analítica", "unos laboratorios"),
    ("la analítica", "los laboratorios"),
    ("analítica", "laboratorios"),
    ("bioquímica", "química sanguínea"),
    ("sistemático de orina", "examen general de orina"),
    ("tensión arterial", "presión arterial"),
    ("TA", "PA"),
    ("Rx de tórax", "placa de tórax"),
    ("gotero", "suero"),
    ("médico de cabecera", "médico familiar"),
    ("catarro", "gripa"),
    ("el ingreso", "la hospitalización"),
    ("ingreso", "hospitalización"),
    ("zumo", "jugo"),
)
_MX_TO_ES = (
    ("una tomografía", "un TAC"),
    ("la tomografía", "el TAC"),
    ("tomografía", "TAC"),
    ("TC", "TAC"),
    ("un ultrasonido", "una ecografía"),
    ("el ultrasonido", "la ecografía"),
    ("ultrasonido", "ecografía"),
    ("USG", "ecografía"),
    ("la biometría hemática", "el hemograma"),
    ("biometría hemática", "hemograma"),
    ("BH", "hemograma"),
    ("los laboratorios", "la analítica"),
    ("laboratorios", "analítica"),
    ("química sanguínea", "bioquímica"),
    ("QS", "bioquímica"),
    ("examen general de orina", "sistemático de orina"),
    ("EGO", "sistemático de orina"),
    ("presión arterial", "tensión arterial"),
    ("PA", "TA"),
    ("placa de tórax", "Rx de tórax"),
    ("gripa", "gripe"),
    ("la hospitalización", "el ingreso"),
    ("hospitalización", "ingreso"),
    ("jugo", "zumo"),
    ("médico familiar", "médico de cabecera"),
)

# Shorthand a hurried author uses; each occurrence is abbreviated on its own coin flip.
_SHORTHAND = {
    "en": (
        ("patient", "pt"),
        ("history", "hx"),
        ("shortness of breath", "SOB"),
        ("nausea and vomiting", "N/V"),
        ("without", "w/o"),
        ("with", "w/"),
        ("treatment", "tx"),
        ("diagnosis", "dx"),
        ("bilateral", "bilat"),
        ("abdominal", "abd"),
        ("blood pressure", "BP"),
        ("chest X-ray", "CXR"),
        ("approximately", "approx"),
        ("years", "yrs"),
        ("weeks", "wks"),
        ("hours", "hrs"),
        ("minutes", "mins"),
        ("months", "mo"),
        ("complains of", "c/o"),
        ("presented with", "p/w"),
        ("because of", "2/2"),
    ),
    "es": (
        ("paciente", "pcte"),
        ("antecedentes", "antec."),
        ("diagnóstico", "dx"),
        ("tratamiento", "tto"),
        ("exploración física", "EF"),
        ("aproximadamente", "aprox."),
        ("radiografía", "Rx"),
        ("horas", "h"),
        ("semanas", "sem"),
        ("con", "c/"),
        ("sin", "s/"),
    ),
}


def _keep_case(original: str, replacement: str) -> str:
    if original[:1].isupper() and not original.isupper() and replacement[:1].islower():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class _Lexicon:
    """Whole-phrase replacements; the first letter's case follows the original."""

    def __init__(self, pairs: Sequence[tuple[str, str]], *, prefix_match: bool = False) -> None:
        self._table: dict[str, str] = {}
        for old, new in pairs:
            self._table[old.lower()] = new
        ordered = sorted(self._table, key=len, reverse=True)  # longest first: "un TAC" before "TAC"
        tail = r"" if prefix_match else r"(?![\w])"
        self._pattern = re.compile(
            r"(?<![\w/])(" + "|".join(re.escape(p) for p in ordered) + r")" + tail, re.IGNORECASE
        )

    def apply(self, text: str, keep: Callable[[], bool] | None = None) -> str:
        def replace(match: re.Match[str]) -> str:
            original = match.group(0)
            if keep is not None and keep():
                return original
            new = self._table[original.lower()]
            if original.isupper() and len(original) > 1:
                return new if new.isupper() else _keep_case(original, new)
            return _keep_case(original, new)

        return self._pattern.sub(replace, text)


_UK_SPELLING = _Lexicon(_US_TO_UK, prefix_match=True)
_US_SPELLING = _Lexicon([(uk, us) for us, uk in _US_TO_UK], prefix_match=True)
_TO_MX = _Lexicon(_ES_TO_MX)
_TO_ES = _Lexicon(_MX_TO_ES)
_SHORTHAND_LEXICON = {lang: _Lexicon(pairs) for lang, pairs in _SHORTHAND.items()}


def to_english_spelling(text: str, spelling: str) -> str:
    """Rewrite English text in US ("us") or British/Commonwealth ("uk") spelling and drug names."""
    return _UK_SPELLING.apply(text) if spelling == "uk" else _US_SPELLING.apply(text)


def to_spanish_locale(text: str, locale: str) -> str:
    """Rewrite Spanish clinical terms for Mexico ("es-MX") or Spain ("es-ES")."""
    return _TO_MX.apply(text) if locale == "es-MX" else _TO_ES.apply(text)


def abbreviate(text: str, language: str, rate: float, rng: np.random.Generator) -> str:
    """Replace each abbreviable phrase with its shorthand with probability `rate`."""
    if rate <= 0:
        return text
    return _SHORTHAND_LEXICON[language].apply(text, keep=lambda: bool(rng.random() >= rate))


_TYPO_WORD = re.compile(r"\b[^\W\d_]{5,}\b")


def add_typos(text: str, rate: float, rng: np.random.Generator) -> str:
    """Swap, drop or double one letter in a share `rate` of the longer lower-case words."""
    if rate <= 0:
        return text

    def mangle(match: re.Match[str]) -> str:
        word = match.group(0)
        if not word.islower() or rng.random() >= rate:
            return word
        i = int(rng.integers(1, len(word) - 1))
        kind = rng.integers(3)
        if kind == 0:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == 1:
            return word[:i] + word[i + 1 :]
        return word[:i] + word[i] + word[i:]

    return _TYPO_WORD.sub(mangle, text)


def drop_accents(text: str) -> str:
    """Write Spanish as many do on a phone: no accents and no opening ¿ ¡ (ñ kept)."""
    out = []
    for ch in text:
        if ch in "ñÑ":
            out.append(ch)
        elif ch in "¿¡":
            continue
        else:
            out.append("".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)))
    return "".join(out)
