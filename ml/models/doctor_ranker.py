"""Which candidate doctors will answer a case: a gradient-boosted model, serving rules, and reasons.

The model scores P(doctor answers the case) from `FEATURES` (filled by `ml.routing.doctors`). Serving rules
(`apply_rules`) then apply what the model must not decide on its own: doctors over the load cap or marked
unavailable go last, and a doctor who does not read the case's language is down-weighted, not
dropped (the platform translates), with a reason saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from sklearn.ensemble import HistGradientBoostingClassifier

from ml.reasons import Reason

# The ranker's input columns, in order: `ml.routing.doctors.DoctorActivity.features` fills them.
FEATURES = (
    "specialty_fit",  # summed probability of the doctor's own specialties
    "interest_fit",  # ... of the specialties the doctor follows
    "has_top_specialty",
    "reads_language",
    "profile_similarity",  # cosine of the case to the mean of the cases the doctor answered
    "similar_cases_answered",  # of the case's nearest resolved cases
    "answers_total",
    "answers_7d",
    "answers_30d",
    "load_24h",
    "local_hour",
    "log_response_hours",  # mean log hours from post to the doctor's answer
    "accept_rate",
    "days_since_last_answer",
)
_COLUMN = {name: i for i, name in enumerate(FEATURES)}


class DoctorRankerConfig(BaseModel):
    """Everything that shapes a trained doctor ranker (logged as MLflow params)."""

    model_config = ConfigDict(frozen=True)

    max_iter: int = Field(default=200, ge=10)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    max_leaf_nodes: int = Field(default=31, ge=2)
    negatives_per_case: int = Field(
        default=100, ge=1, description="non-answering candidates sampled per case"
    )
    seed: int = 0


class RoutingRules(BaseModel):
    """Serving-time rules on top of the model's scores."""

    model_config = ConfigDict(frozen=True)

    load_cap: int = Field(
        default=8, ge=1, description="answers in the last 24 h that take a doctor out of routing"
    )
    language_penalty: float = Field(
        default=0.5, gt=0, le=1, description="score factor for a doctor who does not read the case's language"
    )


@dataclass(frozen=True, slots=True)
class RankedDoctor:
    doctor_id: str
    score: float
    reasons: tuple[Reason, ...]


# A platform with no answers yet ranks by these (untrained): fit to the case's specialties first,
# then the doctor's recent activity.
_RULE_WEIGHTS = {"specialty_fit": 1.0, "has_top_specialty": 0.5, "interest_fit": 0.3, "answers_30d": 0.1}


class DoctorRanker:
    def __init__(self, config: DoctorRankerConfig | None = None) -> None:
        self.config = config or DoctorRankerConfig()
        self._model: HistGradientBoostingClassifier | None = None

    def fit(
        self, features: Sequence[npt.NDArray[np.float64]], answered: Sequence[npt.NDArray[np.bool_]]
    ) -> DoctorRanker:
        """One (candidates, FEATURES) block and answered-flags per training case.

        Without a single answer among them there is nothing to learn: the ranker then scores by
        specialty fit and activity rules (`trained` is False).
        """
        if not any(y.any() for y in answered):
            self._model = None
            return self
        self._model = HistGradientBoostingClassifier(
            max_iter=self.config.max_iter,
            learning_rate=self.config.learning_rate,
            max_leaf_nodes=self.config.max_leaf_nodes,
            early_stopping=True,
            random_state=self.config.seed,
        )
        rng = np.random.default_rng(self.config.seed)
        blocks, labels = [], []
        for x, y in zip(features, answered, strict=True):
            negatives = np.flatnonzero(~y)
            keep = np.concatenate(
                [np.flatnonzero(y), rng.permutation(negatives)[: self.config.negatives_per_case]]
            )
            blocks.append(x[keep])
            labels.append(y[keep])
        self._model.fit(np.concatenate(blocks), np.concatenate(labels))
        return self

    def score(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """P(answers) per candidate row (a ranking score: negatives were subsampled in training)."""
        if len(features) == 0:
            return np.zeros(0)
        if self._model is None:
            column = {name: features[:, _COLUMN[name]] for name in _RULE_WEIGHTS}
            column["answers_30d"] = np.log1p(column["answers_30d"])
            return sum((w * column[name] for name, w in _RULE_WEIGHTS.items()), np.zeros(len(features)))
        return np.asarray(self._model.predict_proba(features)[:, 1], dtype=np.float64)

    @property
    def trained(self) -> bool:
        return self._model is not None


def apply_rules(
    scores: npt.NDArray[np.float64],
    features: npt.NDArray[np.float64],
    rules: RoutingRules,
    *,
    unavailable: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.float64]:
    """Scores after the serving rules; a doctor out of routing gets a negative score (ranked last)."""
    adjusted = np.where(features[:, _COLUMN["reads_language"]] > 0, scores, scores * rules.language_penalty)
    out = features[:, _COLUMN["load_24h"]] >= rules.load_cap
    if unavailable is not None:
        out |= unavailable
    return np.where(out, adjusted - 1.0, adjusted)
