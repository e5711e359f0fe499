"""Promote a candidate only if it beats the champion on the same data: the candidate's own dev split.

Logged dev metrics of two runs trained on different data (a synthetic world, then a store) score
different cases; `retrain` instead scores the champion again on the candidate's dev split
(`score_bundle`) and compares the two on the promotion metrics there.
"""

from __future__ import annotations

from ml.models.bundle import RoutingBundle
from ml.registry import PROMOTION_METRICS, PromotionDecision, compare_metrics, record_decision
from ml.training.pipeline import TrainingData, TrainingResult, score_bundle


def promotion_metric_names(source: str) -> list[str]:
    """`PROMOTION_METRICS` as pipeline metric names, the platform's own set named `source`."""
    names = [name.removeprefix("dev.").replace("_at_", "@") for name in PROMOTION_METRICS]
    return [name.replace("specialty.synthetic.", f"specialty.{source}.") for name in names]


def promote_on_same_data(
    version: int,
    candidate: TrainingResult,
    data: TrainingData,
    champion: tuple[int, RoutingBundle] | None,
    *,
    tolerance: float = 0.005,
) -> PromotionDecision:
    """Make `version` (trained as `candidate` on `data`) the champion unless the champion, scored on
    the same dev split, is better by more than `tolerance` on a promotion metric."""
    if champion is None:
        return record_decision(version, True, ["no champion yet"])
    champion_version, bundle = champion
    promoted, reasons = compare_metrics(
        candidate.metrics["dev"], score_bundle(bundle, data), promotion_metric_names(data.source), tolerance
    )
    reasons.insert(0, f"on the same dev cases ({data.split.describe()}) as version {champion_version}")
    return record_decision(version, promoted, reasons)
