"""Metrics for a ranked list with one relevant item (e.g. the doctor who answered first)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rank_metrics(ranks: Sequence[int | None], *, k: int = 10) -> dict[str, float]:
    """recall@k, nDCG@k and MRR from the 1-based rank of each query's relevant item.

    None means the item was not ranked at all (e.g. not among the candidates): it counts as a
    miss everywhere, so candidate generation's losses show up in the numbers.
    """
    if not ranks:
        raise ValueError("no queries to score")
    found = np.array([r if r is not None else np.inf for r in ranks], dtype=np.float64)
    within = found <= k
    return {
        f"recall@{k}": float(within.mean()),
        f"ndcg@{k}": float(np.where(within, 1.0 / np.log2(np.minimum(found, k) + 1), 0.0).mean()),
        "mrr": float(np.where(np.isfinite(found), 1.0 / found, 0.0).mean()),
    }


def random_rank_metrics(n_items: int, *, k: int = 10) -> dict[str, float]:
    """The exact expectation of `rank_metrics` when the relevant item's rank is uniform over n_items."""
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    top = ranks[:k]
    return {
        f"recall@{k}": min(k, n_items) / n_items,
        f"ndcg@{k}": float((1.0 / np.log2(top + 1)).sum() / n_items),
        "mrr": float((1.0 / ranks).sum() / n_items),
    }
