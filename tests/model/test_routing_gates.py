"""Routing gates on dev: specialties per source, doctors against the activity baseline, urgency."""

from __future__ import annotations

import pytest

from tests.model.floors import FLOORS

pytestmark = pytest.mark.model


@pytest.mark.parametrize("source", ["synthetic", "mtsamples", "codiesp"])
def test_specialty_hit_at_3_holds_on_every_source(dev_metrics: dict[str, float], source: str) -> None:
    assert dev_metrics[f"specialty.{source}.hit@3"] >= FLOORS[f"specialty.{source}.hit@3"]


def test_doctor_ranker_beats_the_activity_baseline(dev_metrics: dict[str, float]) -> None:
    model = dev_metrics["doctors.holdout.served.first_answerer.recall@10"]
    baseline = dev_metrics["doctors.holdout.activity_baseline.first_answerer.recall@10"]
    assert model >= FLOORS["doctors.first_answerer.recall@10"]
    assert model / baseline >= FLOORS["doctors.first_answerer.recall@10_over_baseline"], (model, baseline)


def test_emergencies_are_caught(dev_metrics: dict[str, float]) -> None:
    assert dev_metrics["urgency.emergent_recall"] >= FLOORS["urgency.emergent_recall"]


def test_novelty_tells_rarely_seen_conditions_apart(dev_metrics: dict[str, float]) -> None:
    assert dev_metrics["novelty.rarely_seen_auc"] >= FLOORS["novelty.rarely_seen_auc"]
