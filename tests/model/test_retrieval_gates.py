"""Cross-lingual similar cases on dev, searched as a route call searches (`served_rankings`)."""

from __future__ import annotations

import pytest

from ml.embeddings.base import Encoder
from ml.evaluation.corpora import load_codiesp
from ml.evaluation.crosslingual import parallel_task, served_rankings, synthetic_task
from ml.evaluation.retrieval import score_rankings
from ml.paths import SAMPLE_WORLD_DIR
from tests.model.floors import FLOORS

pytestmark = pytest.mark.model


def test_a_spanish_report_finds_its_english_version(encoder: Encoder) -> None:
    """CodiEsp dev: each Spanish case report against every English (machine-translated) version."""
    task = parallel_task(load_codiesp("dev"), direction="es->en", name="codiesp dev")
    scores = score_rankings(served_rankings(task, encoder, query_language="es"), task.relevant)
    assert scores.recall_at_5 >= FLOORS["retrieval.codiesp.es_en.recall@5"]


def test_a_spanish_post_finds_an_english_case_of_its_condition(encoder: Encoder) -> None:
    """Synthetic dev months, in an index of both languages as the service holds it."""
    task = synthetic_task(SAMPLE_WORLD_DIR, split="dev", mixed=True)
    scores = score_rankings(served_rankings(task, encoder, query_language="es", k=5), task.relevant)
    assert scores.recall_at_5 >= FLOORS["retrieval.synthetic.es_en.recall@5"]
