"""SharedAnalysis gives exactly what each fitted vectorizer's own transform gives."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from ml.models.tfidf import SharedAnalysis

CORPUS = [
    "Crushing chest pain with ST elevation",
    "Dolor torácico opresivo con elevación del ST",
    "Fontan patient coughing branching casts",
    "Paciente con Fontan que expulsa moldes ramificados al toser",
    "chest pain chest pain again",
]
NEW_TEXTS = ["Chest pain after a Fontan operation", "", "palabras nunca vistas zzzz", "ST ST ST elevación"]


@pytest.mark.parametrize(
    "vectorizers",
    [
        [  # two analyses shared by four vectorizers, as the router and the urgency model do
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode", max_features=30),
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode"),
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, strip_accents="unicode"
            ),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, max_features=50),
        ],
        [
            TfidfVectorizer(use_idf=False, norm=None, binary=True),
            TfidfVectorizer(norm="l1", smooth_idf=False),
        ],
    ],
)
def test_shared_analysis_equals_each_vectorizers_transform(vectorizers: list[TfidfVectorizer]) -> None:
    for vectorizer in vectorizers:
        vectorizer.fit(CORPUS)
    shared = SharedAnalysis(vectorizers).transform(NEW_TEXTS)
    assert len(shared) == len(vectorizers)
    for vectorizer, matrix in zip(vectorizers, shared, strict=True):
        expected = vectorizer.transform(NEW_TEXTS)
        assert matrix.shape == expected.shape
        np.testing.assert_allclose(matrix.toarray(), expected.toarray(), rtol=1e-12, atol=1e-12)


def test_vectorizers_that_split_text_alike_share_one_analysis() -> None:
    words = [TfidfVectorizer(min_df=1), TfidfVectorizer(max_features=5)]
    chars = TfidfVectorizer(analyzer="char_wb")
    for vectorizer in (*words, chars):
        vectorizer.fit(CORPUS)
    assert len(SharedAnalysis([*words, chars])._groups) == 2
