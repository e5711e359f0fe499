"""Shared terms: the words that show a doctor why a suggested case is like theirs."""

from __future__ import annotations

from collections.abc import Sequence

from ml.lexicon import BilingualLexicon
from ml.shared_terms import SharedTerm, excerpt, shared_terms

LEXICON = BilingualLexicon(es_to_en={"tos": "cough"}, en_to_es={"cough": "tos"})
SPANISH_POST = "Niño con Fontan que expulsa moldes al toser. Tos con moldes ramificados. Fontanela normal."
ENGLISH_REPORT = "Plastic bronchitis after Fontan: coughs up ramified casts, saturation 84%. [NAME] seen."


def test_words_match_across_languages_by_spelling_cognate_and_lexicon() -> None:
    terms = shared_terms(SPANISH_POST, [ENGLISH_REPORT], LEXICON)[0]
    assert terms == [
        SharedTerm(term="Fontan", query_term="Fontan"),  # and never "Fontanela": short words are no cognates
        SharedTerm(term="coughs", query_term="Tos"),  # lexicon, plural-insensitive
        SharedTerm(term="ramified", query_term="ramificados"),  # cognate: six letters in common
    ]


def test_words_most_cases_use_explain_nothing_and_are_dropped() -> None:
    shares = {"Fontan": 0.001, "coughs": 0.12, "Tos": 0.08, "ramified": 0.002, "ramificados": 0.003}
    asked: list[list[str]] = []

    def document_share(words: Sequence[str]) -> list[float]:
        asked.append(list(words))
        return [shares[w] for w in words]

    both = shared_terms(
        SPANISH_POST, [ENGLISH_REPORT, ENGLISH_REPORT], LEXICON, document_share=document_share
    )
    assert [[t.term for t in terms] for terms in both] == [["Fontan", "ramified"]] * 2
    assert len(asked) == 1, "one look-up for every case's words"


def test_stop_words_numbers_and_placeholders_never_count() -> None:
    post = "The patient, [NAME], 45 years old, with the fever."
    case = "A patient with [NAME]: 45 years of the same fever and fevers."
    assert shared_terms(post, [case], LEXICON) == [[SharedTerm(term="fever", query_term="fever")]]


def test_each_term_is_listed_once_and_the_list_is_bounded() -> None:
    text = " ".join(f"finding{chr(97 + i)}" for i in range(20))
    assert len(shared_terms(text, [f"{text} {text}"], LEXICON, limit=5)[0]) == 5


def test_excerpt_starts_near_the_first_shared_term_on_a_word_boundary() -> None:
    text = "Unrelated opening words. " * 20 + "Then the branching casts appeared. " + "Filler text. " * 20
    cut = excerpt(text, [SharedTerm(term="branching", query_term="ramificados")], width=120)
    assert "branching casts" in cut
    assert cut.startswith("… ") and cut.endswith(" …")
    assert len(cut) <= 124
    assert excerpt("Short text.", [], width=120) == "Short text."
