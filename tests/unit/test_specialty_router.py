import numpy as np
import pytest

from ml.evaluation.classification import expected_calibration_error, hit_at_k, macro_f1_top1
from ml.training.specialty import SpecialtyRouter, SpecialtyRouterConfig, majority_ranking
from tests.fakes import KeywordEncoder

TRAIN = [
    ("crushing chest pain radiating to the arm, troponin rising", ("cardiology",)),
    ("dolor torácico opresivo con troponina elevada", ("cardiology",)),
    ("palpitations and chest pain on exertion, ECG changes", ("cardiology",)),
    ("itchy rash on both legs after a new drug", ("dermatology",)),
    ("exantema pruriginoso en piernas tras un fármaco nuevo", ("dermatology",)),
    ("blistering rash and skin peeling", ("dermatology",)),
    ("child coughing up branching casts after Fontan", ("pediatric_pulmonology", "pediatric_cardiology")),
    ("niño con Fontan que expectora moldes ramificados", ("pediatric_pulmonology",)),
    ("branching casts and wheeze in a Fontan child", ("pediatric_pulmonology",)),
]
ENCODER = KeywordEncoder(
    {
        "heart": ["chest", "torácico", "troponin"],
        "skin": ["rash", "exantema", "skin"],
        "casts": ["casts", "moldes"],
    }
)


@pytest.fixture(scope="module")
def router() -> SpecialtyRouter:
    config = SpecialtyRouterConfig(word_features=1000, char_features=1000, c=10.0, embedding_weight=1.0)
    texts = [t for t, _ in TRAIN * 3]
    return SpecialtyRouter(config).fit(
        texts, ENCODER.encode_documents(texts), [labels for _, labels in TRAIN * 3]
    )


def test_router_ranks_the_right_specialty_first_in_both_languages(router: SpecialtyRouter) -> None:
    queries = [
        "troponina alta y dolor en el pecho",
        "new rash on the arms",
        "moldes bronquiales en un niño con Fontan",
    ]
    ranked = router.rank(queries, ENCODER.encode_queries(queries), k=3)
    assert [r[0].code for r in ranked] == ["cardiology", "dermatology", "pediatric_pulmonology"]
    assert all(0.0 <= s.probability <= 1.0 for row in ranked for s in row)


def test_untrained_specialties_score_zero_and_unknown_codes_fail(router: SpecialtyRouter) -> None:
    probabilities = router.predict_proba(["anything"], ENCODER.encode_queries(["anything"]))
    assert probabilities.shape == (1, 63)
    assert probabilities[0, router.codes.index("urology")] == 0.0
    assert probabilities.sum() == pytest.approx(1.0)
    assert router.trained_labels.sum() == 4  # cardiology, dermatology, both pediatric codes
    with pytest.raises(KeyError):
        SpecialtyRouter().fit(["x"], ENCODER.encode_documents(["x"]), [("urolgy",)])


def test_metrics() -> None:
    rankings = [["cardiology", "pulmonology"], ["dermatology", "cardiology"], ["urology", "nephrology"]]
    labels = [("cardiology",), ("cardiology",), ("nephrology", "urology")]
    assert hit_at_k(rankings, labels, 1) == pytest.approx(2 / 3)
    assert hit_at_k(rankings, labels, 2) == 1.0
    assert 0 < macro_f1_top1(rankings, labels) < 1
    assert majority_ranking([("a",), ("b",), ("b",)], k=2) == ["b", "a"]
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(perfect, perfect.astype(bool)) == 0.0
    assert expected_calibration_error(np.full((2, 2), 0.9), np.zeros((2, 2), dtype=bool)) == pytest.approx(
        0.9
    )
