"""De-identification gates: real annotators' gold (dev splits) and the world's planted identifiers."""

from __future__ import annotations

import pytest

from ml.evaluation.corpora import load_deid_gold
from ml.evaluation.deid import DIRECT_IDENTIFIERS, GoldScore, planted_documents, score_documents
from ml.paths import SAMPLE_WORLD_DIR
from ml.privacy import Deidentifier
from tests.model.floors import FLOORS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def deidentifier() -> Deidentifier:
    return Deidentifier()


def _score(deidentifier: Deidentifier, corpus: str) -> GoldScore:
    documents = (
        planted_documents(SAMPLE_WORLD_DIR, "dev") if corpus == "planted" else load_deid_gold(corpus, "dev")
    )
    return score_documents(
        documents,
        DIRECT_IDENTIFIERS[corpus],
        lambda d: deidentifier.deidentify(d.text, d.language).redactions,
    )


@pytest.mark.parametrize("corpus", ["meddocan", "physionet"])
def test_real_gold_direct_identifiers_are_removed_without_damage(
    deidentifier: Deidentifier, corpus: str
) -> None:
    score = _score(deidentifier, corpus)
    missed = {t: f"{score.removed[t]}/{n}" for t, n in score.spans.items() if t in score.direct_types}
    assert score.recall() >= FLOORS[f"deid.{corpus}.direct_recall"], missed
    assert score.damage() <= FLOORS[f"deid.{corpus}.max_damage"], dict(score.outside_chars)


def test_planted_identifiers_are_removed_and_clean_posts_untouched(deidentifier: Deidentifier) -> None:
    score = _score(deidentifier, "planted")
    missed = {t: f"{score.removed[t]}/{n}" for t, n in score.spans.items()}
    assert score.recall() >= FLOORS["deid.planted.direct_recall"], missed
    assert score.clean_damage() <= FLOORS["deid.planted.max_clean_damage"]
