"""Urgency: emergent / urgent / routine from the case text, calibrated, tuned to catch emergencies.

A multinomial logistic regression over TF-IDF words and character n-grams, with balanced class
weights; a temperature fitted on dev calibrates it. A case is flagged emergent when
P(emergent) reaches a threshold chosen on dev for the best emergent recall at a precision of at
least `min_precision` (if none reaches it, the likeliest level wins): missing an emergency costs more than
a false alarm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline

LEVELS = ("emergent", "urgent", "routine")


class UrgencyConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    c: float = Field(default=4.0, gt=0)
    min_precision: float = Field(
        default=0.8, gt=0, lt=1, description="emergent precision the dev threshold keeps"
    )


class UrgencyModel:
    def __init__(self, config: UrgencyConfig | None = None) -> None:
        self.config = config or UrgencyConfig()
        self._pipeline = make_pipeline(
            FeatureUnion(
                [
                    (
                        "words",
                        TfidfVectorizer(
                            ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode"
                        ),
                    ),
                    (
                        "chars",
                        TfidfVectorizer(
                            analyzer="char_wb",
                            ngram_range=(3, 5),
                            min_df=3,
                            sublinear_tf=True,
                            strip_accents="unicode",
                            max_features=50_000,
                        ),
                    ),
                ]
            ),
            LogisticRegression(C=self.config.c, class_weight="balanced", max_iter=1000),
        )
        self.temperature = 1.0
        self.emergent_threshold: float | None = None  # None: emergent when it is the likeliest level

    def fit(self, texts: Sequence[str], levels: Sequence[str]) -> UrgencyModel:
        unknown = set(levels) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown urgency levels {sorted(unknown)}; expected {LEVELS}")
        self._pipeline.fit(list(texts), [LEVELS.index(level) for level in levels])
        return self

    def calibrate(self, texts: Sequence[str], levels: Sequence[str]) -> UrgencyModel:
        """Temperature by likelihood on dev, then the emergent threshold for `min_precision`."""
        logits = self._logits(texts)
        truth = np.array([LEVELS.index(level) for level in levels])

        def negative_log_likelihood(log_t: float) -> float:
            return float(-log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(truth)), truth].mean())

        self.temperature = float(
            np.exp(minimize_scalar(negative_log_likelihood, bounds=(-3, 3), method="bounded").x)
        )
        p_emergent = self.predict_proba(texts)[:, 0]
        self.emergent_threshold = threshold_for_precision(p_emergent, truth == 0, self.config.min_precision)
        return self

    @property
    def vectorizers(self) -> list[TfidfVectorizer]:
        """The fitted text views, in feature order (a `SharedAnalysis` can compute them)."""
        union: FeatureUnion = self._pipeline[0]
        return [view for _, view in union.transformer_list]

    def predict_proba(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """(cases, 3) probabilities in LEVELS order."""
        return self._calibrated(self._logits(texts))

    def predict_proba_from_views(self, views: Sequence[sp.csr_matrix]) -> npt.NDArray[np.float64]:
        """`predict_proba` from the text views already computed, one matrix per vectorizer."""
        classifier: LogisticRegression = self._pipeline[-1]
        features = sp.hstack(views, format="csr")
        return self._calibrated(np.asarray(classifier.predict_log_proba(features), dtype=np.float64))

    def _calibrated(self, logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(np.exp(log_softmax(logits / self.temperature, axis=1)), dtype=np.float64)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """Emergent when P(emergent) reaches the threshold, otherwise the likelier of the other two."""
        return self.levels(self.predict_proba(texts))

    def levels(self, p: npt.NDArray[np.float64]) -> list[str]:
        """`predict` from probabilities already computed (the text features are the costly part)."""
        threshold = self.emergent_threshold
        if threshold is None:
            return [LEVELS[int(np.argmax(row))] for row in p]
        return ["emergent" if row[0] >= threshold else LEVELS[1 + int(np.argmax(row[1:]))] for row in p]

    def _logits(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        # the model's log-probabilities are logits up to a per-row constant, which softmax ignores
        return np.asarray(self._pipeline.predict_log_proba(list(texts)), dtype=np.float64)


def threshold_for_precision(
    scores: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_], precision: float
) -> float | None:
    """The threshold with the best recall whose precision is at least `precision` — the highest such
    threshold, so no false alarm is added that buys no recall (None if no threshold reaches it)."""
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(positive[order])
    precisions = hits / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(precisions >= precision)
    if not len(ok):
        return None
    best = hits[ok].max()
    return float(scores[order][ok[hits[ok] == best][0]])
