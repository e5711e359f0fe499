"""The de-identification scorer the gates and bench/deid.py share: the black-box scorer's rules."""

from __future__ import annotations

import pytest

from ml.evaluation.corpora import GoldDocument, GoldSpan
from ml.evaluation.deid import GoldScore
from ml.privacy import Redaction

TEXT = "Paciente Juan Pérez, NHC 4417739, tos desde el lunes."


def _document(*spans: tuple[str, str], text: str = TEXT) -> GoldDocument:
    return GoldDocument(
        "d1", text, "es", tuple(GoldSpan(text.index(s), text.index(s) + len(s), t) for s, t in spans), "dev"
    )


def _redaction(text: str, kind: str, source: str = TEXT) -> Redaction:
    return Redaction(source.index(text), source.index(text) + len(text), kind)


def test_a_span_counts_as_removed_from_80_percent_of_its_visible_characters() -> None:
    score = GoldScore(frozenset({"NAME", "ID"}))
    document = _document(("Juan Pérez", "NAME"), ("4417739", "ID"))
    # "Juan Pérez" loses 9 of its 9 visible characters; "4417739" loses 5 of 7 (71%): not removed
    score.add(document, [_redaction("Juan Pérez", "NAME"), _redaction("44177", "RECORD_ID")])
    assert (score.removed["NAME"], score.removed["ID"]) == (1, 0)
    assert score.recall() == pytest.approx(0.5)
    assert score.recall({"NAME"}) == 1.0


def test_damage_is_the_share_of_removed_characters_outside_every_gold_span() -> None:
    score = GoldScore(frozenset({"NAME"}))
    score.add(
        _document(("Juan Pérez", "NAME")), [_redaction("Juan Pérez", "NAME"), _redaction("lunes", "DATE")]
    )
    assert score.damage() == pytest.approx(5 / 14)  # "lunes" (5) of 9 + 5 visible characters removed
    assert score.outside_chars == {"NAME": 0, "DATE": 5}


def test_an_identifier_free_document_that_loses_anything_is_clean_damage() -> None:
    score = GoldScore(frozenset({"NAME"}))
    score.add(_document(), [])
    score.add(_document(), [_redaction("lunes", "DATE")])
    assert (score.clean_documents, score.touched_clean_documents, score.clean_damage()) == (2, 1, 0.5)
