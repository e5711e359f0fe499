"""Specialty router: which of the 63 specialties should see a case, with probabilities.

Multinomial logistic regression over two views of the text: TF-IDF over words and character
n-grams (the rare exact terms) and the multilingual sentence embedding (meaning, across
languages). A case with several acceptable specialties (MTSamples) counts once per code, with
weight 1/n. Probabilities over the trained specialties sum to 1. With `embedding_weight=0` it
is the TF-IDF + logistic regression baseline.

(One-vs-rest liblinear fits took 10.5 min on 17k texts on one core and ranked no better on dev
than this softmax, which fits in under 5 min.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from ml.embeddings.base import Vectors
from ml.taxonomy import load_taxonomy


class SpecialtyRouterConfig(BaseModel):
    """Everything that shapes a trained router (logged as MLflow params)."""

    model_config = ConfigDict(frozen=True)

    c: float = Field(default=10.0, gt=0, description="inverse L2 regularisation")
    embedding_weight: float = Field(
        default=0.0, ge=0, description="scale of the embedding view; 0 = TF-IDF only"
    )
    word_features: int = Field(default=50_000, ge=100)
    char_features: int = Field(default=50_000, ge=100)
    max_iter: int = Field(default=300, ge=10)


@dataclass(frozen=True, slots=True)
class RankedSpecialty:
    code: str
    probability: float


class SpecialtyRouter:
    def __init__(self, config: SpecialtyRouterConfig | None = None) -> None:
        self.config = config or SpecialtyRouterConfig()
        self.codes = load_taxonomy().codes
        self._text = FeatureUnion(
            [
                (
                    "words",
                    TfidfVectorizer(
                        ngram_range=(1, 2),
                        min_df=2,
                        sublinear_tf=True,
                        strip_accents="unicode",
                        max_features=self.config.word_features,
                    ),
                ),
                (
                    "chars",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=(3, 5),
                        min_df=2,
                        sublinear_tf=True,
                        strip_accents="unicode",
                        max_features=self.config.char_features,
                    ),
                ),
            ]
        )
        self._model = LogisticRegression(C=self.config.c, max_iter=self.config.max_iter)
        self._columns: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)  # taxonomy column of each class

    def fit(
        self, texts: Sequence[str], vectors: Vectors, label_sets: Sequence[Sequence[str]]
    ) -> SpecialtyRouter:
        if not len(texts) == len(vectors) == len(label_sets):
            raise ValueError(f"{len(texts)} texts, {len(vectors)} vectors and {len(label_sets)} label sets")
        column = {code: i for i, code in enumerate(self.codes)}
        rows, classes, weights = [], [], []
        for row, labels in enumerate(label_sets):
            if not labels:
                raise ValueError(f"text {row} has no specialty")
            for code in labels:
                classes.append(column[code])  # an unknown code fails loudly here
                rows.append(row)
                weights.append(1.0 / len(labels))
        features = self._features(texts, vectors, fit=True)
        self._model.fit(features[rows], np.array(classes), sample_weight=np.array(weights))
        self._columns = np.asarray(self._model.classes_, dtype=np.intp)
        return self

    @property
    def trained_labels(self) -> npt.NDArray[np.bool_]:
        """Which taxonomy codes the router has seen (the others always get probability 0)."""
        seen = np.zeros(len(self.codes), dtype=bool)
        seen[self._columns] = True
        return seen

    def predict_proba(self, texts: Sequence[str], vectors: Vectors) -> npt.NDArray[np.float64]:
        """P(specialty should see the case), shape (cases, 63), in taxonomy order."""
        probabilities = np.zeros((len(texts), len(self.codes)))
        probabilities[:, self.trained_labels] = self._model.predict_proba(
            self._features(texts, vectors, fit=False)
        )
        return probabilities

    def rank(self, texts: Sequence[str], vectors: Vectors, *, k: int = 3) -> list[list[RankedSpecialty]]:
        probabilities = self.predict_proba(texts, vectors)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return [
            [RankedSpecialty(self.codes[j], float(probabilities[i, j])) for j in row]
            for i, row in enumerate(order)
        ]

    def _features(self, texts: Sequence[str], vectors: Vectors, *, fit: bool) -> sp.csr_matrix:
        lexical = self._text.fit_transform(texts) if fit else self._text.transform(texts)
        if self.config.embedding_weight == 0:
            return sp.csr_matrix(lexical)
        dense = sp.csr_matrix(np.asarray(vectors, dtype=np.float64) * self.config.embedding_weight)
        return sp.hstack([lexical, dense], format="csr")


def majority_ranking(train_label_sets: Sequence[Sequence[str]], k: int = 3) -> list[str]:
    """The floor: the k specialties most often right in training, for every case."""
    counts: dict[str, int] = {}
    for labels in train_label_sets:
        for code in labels:
            counts[code] = counts.get(code, 0) + 1
    return sorted(counts, key=lambda c: (-counts[c], c))[:k]
