"""A posted case made safe to store or embed: its language settled and its identifiers replaced."""

from __future__ import annotations

from ml.language import UNKNOWN, detect_language
from ml.matching import post_text
from ml.privacy.deid import Deidentifier
from service.domain_errors import UnknownLanguageError
from service.schemas import CaseIn


def case_language(case: CaseIn) -> str:
    """The declared language, else the detected one; `UnknownLanguageError` when neither."""
    if case.language:
        return case.language
    detected = detect_language(post_text(case.title, case.text))
    if detected == UNKNOWN:
        raise UnknownLanguageError()
    return detected


def deidentified(deid: Deidentifier, case: CaseIn, language: str) -> tuple[str, str]:
    """Title and text with identifiers replaced: nothing raw is stored or embedded."""
    return deid.deidentify(case.title, language).text, deid.deidentify(case.text, language).text
