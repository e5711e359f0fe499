"""Metrics for ranked labels: hit@k, macro-F1 of the top label, expected calibration error."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.metrics import f1_score


def hit_at_k(rankings: Sequence[Sequence[str]], label_sets: Sequence[Sequence[str]], k: int) -> float:
    """Share of cases whose top-k codes contain any code of their label set."""
    if len(rankings) != len(label_sets) or not rankings:
        raise ValueError("need one ranking per label set, and at least one")
    return sum(bool(set(r[:k]) & set(labels)) for r, labels in zip(rankings, label_sets, strict=True)) / len(
        rankings
    )


def macro_f1_top1(rankings: Sequence[Sequence[str]], label_sets: Sequence[Sequence[str]]) -> float:
    """Macro-F1 over the true labels, of the top-ranked code.

    A case's true label is the first of its set, unless the top code is in the set (any code of
    the set counts as right): then the top code is the true label too.
    """
    predicted = [r[0] for r in rankings]
    truth = [p if p in labels else labels[0] for p, labels in zip(predicted, label_sets, strict=True)]
    return float(f1_score(truth, predicted, labels=sorted(set(truth)), average="macro", zero_division=0))


def expected_calibration_error(
    probabilities: npt.NDArray[np.float64], targets: npt.NDArray[np.bool_], *, bins: int = 15
) -> float:
    """ECE over every (case, label) probability: |accuracy - confidence| weighted by bin size."""
    p = probabilities.ravel()
    y = targets.ravel().astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(y[members].mean() - p[members].mean())
    return float(error)
