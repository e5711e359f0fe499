import numpy as np
import pytest

from ml.evaluation.classification import expected_calibration_error, hit_at_k, macro_f1_top1
from ml.models.specialty import SpecialtyRouter, SpecialtyRouterConfig, majority_ranking
from ml.models.zero_shot import ZeroShotSpecialties, load_descriptions
from ml.taxonomy import load_taxonomy
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
        "skin": ["rash", "exantema"],
        "casts": ["casts", "moldes"],
        "kidney": ["kidney stone", "cólico renal", "hematuria", "litiasis"],
    }
)
ZERO_SHOT = ZeroShotSpecialties.embed(ENCODER)


@pytest.fixture(scope="module")
def router() -> SpecialtyRouter:
    config = SpecialtyRouterConfig(word_features=1000, char_features=1000, c=10.0, embedding_weight=1.0)
    texts = [t for t, _ in TRAIN * 3]
    router = SpecialtyRouter(config, ZERO_SHOT).fit(
        texts, ENCODER.encode_documents(texts), [labels for _, labels in TRAIN * 3]
    )
    return router.calibrate(DEV_TEXTS, ENCODER.encode_documents(DEV_TEXTS), DEV_LABELS)


DEV_TEXTS = [
    "chest pain with troponin rise",
    "rash on the skin of the arms",
    "Fontan child with casts",
    "kidney stone with hematuria",  # no training text: only zero-shot can route it
    "cólico renal con litiasis",
]
DEV_LABELS = [("cardiology",), ("dermatology",), ("pediatric_pulmonology",), ("urology",), ("urology",)]


def test_router_ranks_the_right_specialty_first_in_both_languages(router: SpecialtyRouter) -> None:
    queries = [
        "troponina alta y dolor en el pecho",
        "new rash on the arms",
        "moldes bronquiales en un niño con Fontan",
    ]
    ranked = router.rank(queries, ENCODER.encode_queries(queries), k=3)
    assert [r[0].code for r in ranked] == ["cardiology", "dermatology", "pediatric_pulmonology"]
    assert all(0.0 <= s.probability <= 1.0 for row in ranked for s in row)


def test_zero_shot_routes_a_specialty_without_training_cases(router: SpecialtyRouter) -> None:
    assert not router.trained_labels[router.codes.index("urology")]
    queries = ["kidney stone and hematuria", "litiasis con cólico renal"]
    ranked = router.rank(queries, ENCODER.encode_queries(queries), k=3)
    assert all("urology" in [s.code for s in row] for row in ranked)
    assert router.weights[1] > 0, "calibration gave the zero-shot channel weight"


def test_probabilities_cover_every_code_and_unknown_codes_fail(router: SpecialtyRouter) -> None:
    probabilities = router.predict_proba(["anything"], ENCODER.encode_queries(["anything"]))
    assert probabilities.shape == (1, 63)
    assert probabilities.sum() == pytest.approx(1.0)
    assert router.trained_labels.sum() == 4  # cardiology, dermatology, both pediatric codes
    with pytest.raises(KeyError):
        SpecialtyRouter(SpecialtyRouterConfig(zero_shot=False)).fit(
            ["x"], ENCODER.encode_documents(["x"]), [("urolgy",)]
        )
    with pytest.raises(ValueError, match="description vectors"):
        SpecialtyRouter(SpecialtyRouterConfig(zero_shot=True))


def test_every_specialty_has_a_description_in_both_languages() -> None:
    descriptions = load_descriptions()
    assert set(descriptions) == set(load_taxonomy().codes)
    assert all(len(d["en"].split()) >= 30 and len(d["es"].split()) >= 30 for d in descriptions.values())


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


def test_training_twice_gives_the_same_router() -> None:
    """A retrained version must be comparable with its champion: no hidden randomness."""
    texts = [t for t, _ in TRAIN * 3]
    labels = [labels for _, labels in TRAIN * 3]
    config = SpecialtyRouterConfig(word_features=1000, char_features=1000, zero_shot=False)
    first, second = (
        SpecialtyRouter(config).fit(texts, ENCODER.encode_documents(texts), labels) for _ in range(2)
    )
    queries = ["troponina alta", "rash on the arms"]
    vectors = ENCODER.encode_queries(queries)
    np.testing.assert_array_equal(
        first.predict_proba(queries, vectors), second.predict_proba(queries, vectors)
    )
