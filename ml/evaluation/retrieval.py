"""Ranking metrics for retrieval: top-1, recall@k and MRR over queries with known answers."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RetrievalScores:
    queries: int
    top1: float
    recall_at_5: float
    recall_at_10: float
    mrr: float


def score_rankings(rankings: Sequence[Sequence[str]], relevant: Sequence[Collection[str]]) -> RetrievalScores:
    """`rankings[i]` is the ranked result ids of query i; `relevant[i]` the ids that count as right.

    MRR uses the rank of the first right result (0 when none is returned).
    """
    if len(rankings) != len(relevant):
        raise ValueError(f"{len(rankings)} rankings but {len(relevant)} answer sets")
    if not rankings:
        raise ValueError("no queries to score")
    first_ranks = [_first_rank(ranking, answers) for ranking, answers in zip(rankings, relevant, strict=True)]
    n = len(rankings)
    return RetrievalScores(
        queries=n,
        top1=sum(r == 1 for r in first_ranks) / n,
        recall_at_5=sum(0 < r <= 5 for r in first_ranks) / n,
        recall_at_10=sum(0 < r <= 10 for r in first_ranks) / n,
        mrr=sum(1 / r for r in first_ranks if r) / n,
    )


def _first_rank(ranking: Sequence[str], answers: Collection[str]) -> int:
    for position, item in enumerate(ranking, start=1):
        if item in answers:
            return position
    return 0
