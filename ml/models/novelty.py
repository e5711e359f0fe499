"""Novelty: how unlike anything already resolved a case is, so a rare case can be broadcast widely.

A case's raw score is its mean cosine similarity to its k nearest resolved cases. The scorer
keeps the raw scores of a reference set (dev cases against the cases resolved before them), and
reports novelty as the share of reference cases that had closer neighbours: 0.97 means "less
like the past than 97% of cases were".
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field


class NoveltyConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    k: int = Field(default=5, ge=1, description="nearest resolved cases averaged")
    broadcast_above: float = Field(
        default=0.95, gt=0, lt=1, description="novelty that asks for a wide broadcast"
    )


class NoveltyScorer:
    def __init__(self, config: NoveltyConfig | None = None) -> None:
        self.config = config or NoveltyConfig()
        self._reference = np.zeros(0)

    def fit(self, neighbour_similarities: npt.NDArray[np.float64]) -> NoveltyScorer:
        """Reference cases' similarities to their nearest resolved cases, (cases, >= k)."""
        self._reference = np.sort(self.raw(neighbour_similarities))
        return self

    def raw(self, neighbour_similarities: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        top = -np.sort(-np.atleast_2d(neighbour_similarities), axis=1)[:, : self.config.k]
        if top.shape[1] < self.config.k:  # fewer resolved cases than k: the missing ones are unlike it
            top = np.pad(top, ((0, 0), (0, self.config.k - top.shape[1])))
        return np.asarray(top.mean(axis=1), dtype=np.float64)

    def score(self, neighbour_similarities: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Novelty in [0, 1] per case: the share of reference cases more similar to the past."""
        raw = self.raw(neighbour_similarities)
        if not len(self._reference):  # fitted before anything was resolved: novelty is unlikeness
            return np.clip(1.0 - raw, 0.0, 1.0)
        return 1.0 - np.searchsorted(self._reference, raw, side="left") / len(self._reference)
