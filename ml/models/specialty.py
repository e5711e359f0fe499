"""Specialty router: which of the 63 specialties should see a case, with calibrated probabilities.

Three channels, one softmax:
- a linear model over TF-IDF words (1-2 grams) and character 3-5 grams — the exact terms —
  optionally with the multilingual sentence embedding appended as a dense view;
- zero-shot: the embedding's cosine to each specialty's English and Spanish description
  (`ml.models.zero_shot`), which routes a specialty the training data barely has;
- a combiner, P(code) = softmax(a * linear_score + b * zero_shot_similarity), whose two weights
  are fitted on the dev split by likelihood: this is both the blend and the calibration
  (a and b act as inverse temperatures).
A text with several acceptable codes (MTSamples) trains once per code with weight 1/n, and its
likelihood is that of any of its codes. Uncalibrated, the combiner is the plain softmax of
the linear scores (a=1, b=0).

(Linear SVMs fit in about a quarter of the time of a multinomial logistic regression here,
ranked at least as well on dev, and their scores need the calibration anyway.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize
from scipy.special import log_softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from ml.embeddings.base import Vectors
from ml.models.zero_shot import ZeroShotSpecialties
from ml.taxonomy import load_taxonomy


class SpecialtyRouterConfig(BaseModel):
    """Everything that shapes a trained router (logged as MLflow params)."""

    model_config = ConfigDict(frozen=True)

    model: Literal["linear_svm", "logistic"] = "linear_svm"
    c: float = Field(default=1.0, gt=0, description="inverse L2 regularisation of the linear model")
    word_features: int = Field(default=50_000, ge=100)
    char_features: int = Field(default=50_000, ge=0, description="0 = no character n-gram view")
    embedding_weight: float = Field(default=0.0, ge=0, description="scale of the embedding view; 0 = none")
    zero_shot: bool = Field(default=True, description="blend in the similarity to specialty descriptions")
    max_iter: int = Field(default=1000, ge=10)


@dataclass(frozen=True, slots=True)
class RankedSpecialty:
    code: str
    probability: float


class SpecialtyRouter:
    def __init__(
        self, config: SpecialtyRouterConfig | None = None, zero_shot: ZeroShotSpecialties | None = None
    ) -> None:
        self.config = config or SpecialtyRouterConfig()
        if self.config.zero_shot and zero_shot is None:
            raise ValueError(
                "zero_shot=True needs the specialty description vectors (ZeroShotSpecialties.embed)"
            )
        self.zero_shot = zero_shot if self.config.zero_shot else None
        self.codes = load_taxonomy().codes
        views = [("words", _tfidf("word", (1, 2), self.config.word_features))]
        if self.config.char_features:
            views.append(("chars", _tfidf("char_wb", (3, 5), self.config.char_features)))
        self._text = FeatureUnion(views)
        self._model: LinearSVC | LogisticRegression = (
            LinearSVC(C=self.config.c, max_iter=self.config.max_iter, random_state=0)  # liblinear shuffles
            if self.config.model == "linear_svm"
            else LogisticRegression(C=self.config.c, max_iter=self.config.max_iter)
        )
        self._columns: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)  # taxonomy column of each class
        self.weights = (1.0, 0.0)  # the combiner's (a, b)

    def fit(
        self, texts: Sequence[str], vectors: Vectors, label_sets: Sequence[Sequence[str]]
    ) -> SpecialtyRouter:
        if not len(texts) == len(vectors) == len(label_sets):
            raise ValueError(f"{len(texts)} texts, {len(vectors)} vectors and {len(label_sets)} label sets")
        rows, classes, weights = [], [], []
        for row, labels in enumerate(self._label_columns(label_sets)):
            for column in labels:
                rows.append(row)
                classes.append(column)
                weights.append(1.0 / len(labels))
        features = self._features(texts, vectors, fit=True)
        self._model.fit(features[rows], np.array(classes), sample_weight=np.array(weights))
        self._columns = np.asarray(self._model.classes_, dtype=np.intp)
        return self

    def calibrate(
        self,
        texts: Sequence[str],
        vectors: Vectors,
        label_sets: Sequence[Sequence[str]],
        sample_weight: Sequence[float] | None = None,
    ) -> SpecialtyRouter:
        """Fit the combiner's weights on held-out (dev) texts by (weighted) maximum likelihood."""
        linear, similarity = self._channels(texts, vectors)
        weight = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        weight = weight / weight.sum()
        targets = np.zeros(linear.shape, dtype=bool)
        for row, labels in enumerate(self._label_columns(label_sets)):
            targets[row, labels] = True

        def negative_log_likelihood(params: npt.NDArray[np.float64]) -> float:
            log_p = log_softmax(np.exp(params[0]) * linear + params[1] * similarity, axis=1)
            return float(-(np.logaddexp.reduce(np.where(targets, log_p, -np.inf), axis=1) * weight).sum())

        start = np.array([0.0, 10.0 if self.zero_shot is not None else 0.0])
        if self.zero_shot is None:
            result = minimize(
                lambda a: negative_log_likelihood(np.array([a[0], 0.0])), start[:1], method="Nelder-Mead"
            )
            self.weights = (float(np.exp(result.x[0])), 0.0)
        else:
            result = minimize(negative_log_likelihood, start, method="Nelder-Mead")
            self.weights = (float(np.exp(result.x[0])), float(result.x[1]))
        return self

    @property
    def trained_labels(self) -> npt.NDArray[np.bool_]:
        """Which taxonomy codes had training texts (others are reached through zero-shot only)."""
        seen = np.zeros(len(self.codes), dtype=bool)
        seen[self._columns] = True
        return seen

    @property
    def vectorizers(self) -> list[TfidfVectorizer]:
        """The fitted text views, in feature order (a `SharedAnalysis` can compute them)."""
        return [view for _, view in self._text.transformer_list]

    def predict_proba(self, texts: Sequence[str], vectors: Vectors) -> npt.NDArray[np.float64]:
        """P(code is the specialty that should see the case first), shape (cases, 63), rows sum to 1."""
        return self._combined(*self._channels(texts, vectors))

    def predict_proba_from_views(
        self, views: Sequence[sp.csr_matrix], vectors: Vectors
    ) -> npt.NDArray[np.float64]:
        """`predict_proba` from the text views already computed, one matrix per vectorizer."""
        return self._combined(*self._channels_from_views(sp.hstack(views, format="csr"), vectors))

    def _combined(
        self, linear: npt.NDArray[np.float64], similarity: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        a, b = self.weights
        return np.asarray(np.exp(log_softmax(a * linear + b * similarity, axis=1)), dtype=np.float64)

    def rank(self, texts: Sequence[str], vectors: Vectors, *, k: int = 3) -> list[list[RankedSpecialty]]:
        probabilities = self.predict_proba(texts, vectors)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return [
            [RankedSpecialty(self.codes[j], float(probabilities[i, j])) for j in row]
            for i, row in enumerate(order)
        ]

    def _channels(
        self, texts: Sequence[str], vectors: Vectors
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        return self._channels_from_views(self._text.transform(texts), vectors)

    def _channels_from_views(
        self, lexical: sp.csr_matrix, vectors: Vectors
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Linear scores and zero-shot similarities, (cases, 63) each, in taxonomy order."""
        scores = np.asarray(
            self._model.decision_function(self._with_embedding(lexical, vectors)), dtype=np.float64
        )
        if scores.ndim == 1:  # two classes: scikit-learn gives one score, for the second class
            scores = np.column_stack([-scores / 2, scores / 2])
        if self.config.model == "logistic":
            scores = log_softmax(scores, axis=1)  # log-probabilities: a=1, b=0 is the model's own softmax
        linear = np.repeat(
            scores.min(axis=1, keepdims=True), len(self.codes), axis=1
        )  # untrained codes: the floor
        linear[:, self._columns] = scores
        similarity = (
            self.zero_shot.similarities(vectors) if self.zero_shot is not None else np.zeros_like(linear)
        )
        return linear, similarity

    def _label_columns(self, label_sets: Sequence[Sequence[str]]) -> list[list[int]]:
        column = {code: i for i, code in enumerate(self.codes)}
        out = []
        for row, labels in enumerate(label_sets):
            if not labels:
                raise ValueError(f"text {row} has no specialty")
            out.append([column[code] for code in labels])  # an unknown code fails loudly here
        return out

    def _features(self, texts: Sequence[str], vectors: Vectors, *, fit: bool) -> sp.csr_matrix:
        lexical = self._text.fit_transform(texts) if fit else self._text.transform(texts)
        return self._with_embedding(lexical, vectors)

    def _with_embedding(self, lexical: sp.csr_matrix, vectors: Vectors) -> sp.csr_matrix:
        if self.config.embedding_weight == 0:
            return sp.csr_matrix(lexical)
        dense = sp.csr_matrix(np.asarray(vectors, dtype=np.float64) * self.config.embedding_weight)
        return sp.hstack([lexical, dense], format="csr")


def _tfidf(analyzer: Literal["word", "char_wb"], ngrams: tuple[int, int], features: int) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=ngrams,
        min_df=2,
        sublinear_tf=True,
        strip_accents="unicode",
        max_features=features,
    )


def majority_ranking(train_label_sets: Sequence[Sequence[str]], k: int = 3) -> list[str]:
    """The floor: the k specialties most often right in training, for every case."""
    counts: dict[str, int] = {}
    for labels in train_label_sets:
        for code in labels:
            counts[code] = counts.get(code, 0) + 1
    return sorted(counts, key=lambda c: (-counts[c], c))[:k]
