"""The full-size default world (20,000 cases, 5,000 doctors): the calibration the README promises."""

from __future__ import annotations

import pytest

from ml.synthetic.knowledge import KnowledgeBase
from ml.synthetic.world import WorldConfig, generate_world
from ml.taxonomy import Taxonomy


@pytest.mark.slow
def test_default_world_is_calibrated(knowledge_base: KnowledgeBase, taxonomy: Taxonomy) -> None:
    stats = generate_world(WorldConfig(), knowledge_base, taxonomy).stats
    assert stats["cases"] == 20_000
    assert 1.3 <= stats["median_first_answer_hours"] <= 1.7, "median first answer should be about 1.5 h"
    assert 0.27 <= stats["spanish_share"] <= 0.33, "about 30% of posts should be Spanish"
    assert stats["resolved_within_24h_share"] >= 0.8, "most cases should resolve within 24 h"
    assert stats["answered_share"] >= 0.95
    assert 0.18 <= stats["cases_with_identifiers"] / stats["cases"] <= 0.22
