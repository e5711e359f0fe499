"""Scores for every routing model on one split, as flat metric dicts (MLflow-ready) and markdown.

Metric names are `<model>.<slice>.<metric>`, e.g. `specialty.mtsamples.hit@3`,
`doctors.first_answerer.recall@10`, `urgency.emergent_recall`. The dev split's metrics decide
promotion; the test split's are reported, never used to choose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from sklearn.metrics import confusion_matrix, roc_auc_score

from ml.evaluation.classification import expected_calibration_error, hit_at_k, macro_f1_top1
from ml.evaluation.ranking import rank_metrics
from ml.models.urgency import LEVELS
from ml.taxonomy import load_taxonomy
from ml.training.interactions import RankingExample

Metrics = dict[str, float]


def specialty_metrics(
    probabilities: npt.NDArray[np.float64], label_sets: Sequence[Sequence[str]], *, prefix: str
) -> Metrics:
    """hit@1, hit@3, macro-F1 of the top code, and ECE over every (case, code) probability."""
    codes = load_taxonomy().codes
    column = {code: i for i, code in enumerate(codes)}
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
    rankings = [[codes[j] for j in row] for row in order]
    targets = np.zeros(probabilities.shape, dtype=bool)
    for i, labels in enumerate(label_sets):
        targets[i, [column[c] for c in labels]] = True
    return {
        f"{prefix}.hit@1": hit_at_k(rankings, label_sets, 1),
        f"{prefix}.hit@3": hit_at_k(rankings, label_sets, 3),
        f"{prefix}.macro_f1": macro_f1_top1(rankings, label_sets),
        f"{prefix}.ece": expected_calibration_error(probabilities, targets),
        f"{prefix}.cases": float(len(label_sets)),
    }


def doctor_metrics(
    examples: Sequence[RankingExample],
    scores: Callable[[RankingExample], npt.NDArray[np.float64]],
    *,
    prefix: str,
) -> Metrics:
    """recall@10, nDCG@10 and MRR of the first answerer and of the accepted answerer.

    A doctor outside the candidates counts as a miss; `candidate_recall` says how often that happened.
    """
    out: Metrics = {}
    first: list[int | None] = []
    accepted: list[int | None] = []
    in_candidates = []
    for example in examples:
        s = scores(example)
        ranked = example.candidates[np.argsort(-s, kind="stable")]
        for target, ranks in ((example.first_answerer, first), (example.accepted_answerer, accepted)):
            if target is not None:
                where = np.flatnonzero(ranked == target)
                ranks.append(int(where[0]) + 1 if len(where) else None)
        if example.first_answerer is not None:
            in_candidates.append(example.first_answerer in set(example.candidates.tolist()))
    for name, ranks in (("first_answerer", first), ("accepted_answerer", accepted)):
        for metric, value in rank_metrics(ranks).items():
            out[f"{prefix}.{name}.{metric}"] = value
    out[f"{prefix}.candidate_recall"] = float(np.mean(in_candidates))
    return out


def activity_baseline_metrics(examples: Sequence[RankingExample], *, prefix: str) -> Metrics:
    """The baseline: the 10 doctors of the top predicted specialty with the most answers so far."""
    out: Metrics = {}
    for name in ("first_answerer", "accepted_answerer"):
        ranks: list[int | None] = []
        for example in examples:
            target = getattr(example, name)
            if target is not None:
                where = np.flatnonzero(example.most_active_of_top_specialty == target)
                ranks.append(int(where[0]) + 1 if len(where) else None)
        for metric, value in rank_metrics(ranks).items():
            out[f"{prefix}.{name}.{metric}"] = value
    return out


def urgency_metrics(
    probabilities: npt.NDArray[np.float64], levels: Sequence[str], predicted: Sequence[str], *, prefix: str
) -> Metrics:
    """Emergent recall and precision at the model's threshold, plus the confusion matrix cells."""
    truth = np.array([LEVELS.index(level) for level in levels])
    guess = np.array([LEVELS.index(level) for level in predicted])
    emergent = truth == 0
    flagged = guess == 0
    out: Metrics = {
        f"{prefix}.emergent_recall": float((flagged & emergent).sum() / max(emergent.sum(), 1)),
        f"{prefix}.emergent_precision": float((flagged & emergent).sum() / max(flagged.sum(), 1)),
        f"{prefix}.accuracy": float((truth == guess).mean()),
        f"{prefix}.ece": expected_calibration_error(probabilities, np.eye(len(LEVELS), dtype=bool)[truth]),
    }
    matrix = confusion_matrix(truth, guess, labels=range(len(LEVELS)))
    for i, actual in enumerate(LEVELS):
        for j, said in enumerate(LEVELS):
            out[f"{prefix}.confusion.{actual}.{said}"] = float(matrix[i, j])
    return out


def novelty_metrics(
    novelty: npt.NDArray[np.float64], rarely_seen: npt.NDArray[np.bool_], *, prefix: str
) -> Metrics:
    """ROC AUC of novelty for 'the condition was rarely resolved before', and how many such cases."""
    out: Metrics = {f"{prefix}.rarely_seen_cases": float(rarely_seen.sum())}
    if rarely_seen.any() and not rarely_seen.all():
        out[f"{prefix}.rarely_seen_auc"] = float(roc_auc_score(rarely_seen, novelty))
    return out


def similar_case_feedback_metrics(
    similarity: npt.NDArray[np.float64], useful: npt.NDArray[np.bool_], *, prefix: str
) -> Metrics:
    """Doctors' verdicts on suggested similar cases: how many, the share found useful, and the ROC AUC
    of the case-to-suggestion cosine for 'useful' (does closeness in the encoder's space mean help?)."""
    out: Metrics = {f"{prefix}.verdicts": float(len(useful))}
    if len(useful):
        out[f"{prefix}.useful_share"] = float(useful.mean())
    if useful.any() and not useful.all():
        out[f"{prefix}.cosine_auc"] = float(roc_auc_score(useful, similarity))
    return out


def markdown_table(metrics: Metrics, *, title: str) -> str:
    """All metrics as a two-column markdown table (logged with each MLflow run)."""
    lines = [f"## {title}", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in sorted(metrics.items())]
    return "\n".join(lines) + "\n"
