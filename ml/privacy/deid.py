"""De-identify a case post: find identifiers, replace each with a typed placeholder."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from presidio_analyzer import RecognizerResult

from ml.privacy.engine import LANGUAGES, build_analyzer, load_pipelines, model_dirs
from ml.privacy.kinds import placeholder
from ml.privacy.ner import model_fingerprint

logger = logging.getLogger(__name__)

MIN_SCORE = 0.4
# Touches every recognizer once, so lazily compiled patterns exist before threads share them.
_WARM_UP = "Pt: Ann Lee, DOB 02/03/1950, NHC 1234567, tel +34 600 000 000, 1 Main Street, a@b.com."


@dataclass(frozen=True, slots=True)
class Redaction:
    """A removed identifier: its span in the ORIGINAL text and its kind (see `kinds.KINDS`)."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True, slots=True)
class DeidResult:
    text: str
    redactions: tuple[Redaction, ...]


class Deidentifier:
    """Replaces names, dates, phones, e-mails, addresses, places, record, insurance, licence and
    national ids in case posts.

    Loading takes a second or two (one trained spaCy pipeline per language); build one and share
    it. Concurrent calls are safe: the spaCy step runs under a lock, the recognizers keep no
    per-call state. `ner_dirs` replaces a language's packaged model (for evaluating a new one).
    """

    def __init__(self, *, ner_dirs: Mapping[str, Path] | None = None, min_score: float = MIN_SCORE) -> None:
        directories = model_dirs(ner_dirs)
        self._analyzer = build_analyzer(load_pipelines(directories))
        # One fingerprint per language model, and one over both for logs and model metadata.
        self.fingerprints = {language: model_fingerprint(path) for language, path in directories.items()}
        self.fingerprint = hashlib.sha256(
            "".join(f"{k}:{v}\n" for k, v in sorted(self.fingerprints.items())).encode()
        ).hexdigest()
        self._min_score = min_score
        self._nlp_lock = threading.Lock()
        for language in LANGUAGES:
            self.deidentify(_WARM_UP, language)

    def deidentify(self, text: str, language: str) -> DeidResult:
        """`text` with identifiers replaced; `language` 'en' or 'es' (anything else: English rules)."""
        if not text.strip():
            return DeidResult(text=text, redactions=())
        language = language if language in LANGUAGES else "en"
        with self._nlp_lock:
            artifacts = self._analyzer.nlp_engine.process_text(text, language)
        found = self._analyzer.analyze(
            text, language, nlp_artifacts=artifacts, score_threshold=self._min_score
        )
        redactions = merge_overlapping(found)
        logger.debug("de-identified %d chars (%s): %d redactions", len(text), language, len(redactions))
        return DeidResult(text=replace_spans(text, redactions), redactions=redactions)


def merge_overlapping(results: Iterable[RecognizerResult]) -> tuple[Redaction, ...]:
    """One redaction per group of overlapping findings, covering all of them.

    The union leaks nothing that any recognizer saw; the kind is the longest finding's (an address
    that contains a street named after a person stays an address).
    """
    groups: list[list[RecognizerResult]] = []
    group_end = -1
    for result in sorted(results, key=lambda r: (r.start, -r.end)):
        if groups and result.start < group_end:
            groups[-1].append(result)
            group_end = max(group_end, result.end)
        else:
            groups.append([result])
            group_end = result.end
    return tuple(_merge(group) for group in groups)


def _merge(group: list[RecognizerResult]) -> Redaction:
    kind = max(group, key=lambda r: (r.end - r.start, r.score)).entity_type
    return Redaction(min(r.start for r in group), max(r.end for r in group), kind)


def replace_spans(text: str, redactions: tuple[Redaction, ...]) -> str:
    """`text` with every (sorted, disjoint) redaction replaced by its placeholder."""
    pieces = []
    cursor = 0
    for redaction in redactions:
        pieces += [text[cursor : redaction.start], placeholder(redaction.kind)]
        cursor = redaction.end
    pieces.append(text[cursor:])
    return "".join(pieces)
