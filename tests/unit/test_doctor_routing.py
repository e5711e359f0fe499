"""Doctor features use only the past; serving rules and reasons do what the product promises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ml.evaluation.ranking import random_rank_metrics, rank_metrics
from ml.models.doctor_ranker import FEATURES, DoctorRanker, RoutingRules, apply_rules
from ml.routing.doctor_ranking import doctor_reasons, rank_doctors
from ml.routing.doctors import CaseContext, DoctorActivity, DoctorProfile
from ml.taxonomy import load_taxonomy

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CODES = load_taxonomy().codes
DOCTORS = [
    DoctorProfile("cardio-es", ("cardiology",), ("internal_medicine",), ("es",), "Europe/Madrid"),
    DoctorProfile("cardio-en", ("cardiology",), (), ("en",), "America/New_York"),
    DoctorProfile("derm", ("dermatology",), (), ("en", "es"), "America/Mexico_City"),
    DoctorProfile(
        "peds-pulm", ("pediatric_pulmonology",), ("pediatric_cardiology",), ("en",), "Europe/London"
    ),
]


def _vector(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def _case(
    code: str, language: str = "es", at: datetime = T0, similar: dict[str, int] | None = None
) -> CaseContext:
    p = np.full(len(CODES), 0.01 / (len(CODES) - 1))
    p[CODES.index(code)] = 0.99
    return CaseContext(_vector(1, 0), language, at, p, similar or {}, author_id=None)


def _column(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, FEATURES.index(name)]


def test_features_count_only_answers_already_given_and_expire_windows() -> None:
    activity = DoctorActivity(DOCTORS, dim=2)
    activity.record_answer(
        "cardio-es", case_vector=_vector(1, 0), posted_at=T0, answered_at=T0 + timedelta(hours=2)
    )
    activity.record_acceptance("cardio-es")
    later = T0 + timedelta(hours=3)
    activity.advance(later)
    everyone = np.arange(len(DOCTORS))
    features = activity.features(_case("cardiology", at=later), everyone)
    assert _column(features, "answers_total").tolist() == [1, 0, 0, 0]
    assert _column(features, "load_24h")[0] == 1
    assert _column(features, "profile_similarity")[0] == pytest.approx(1.0)
    assert np.isnan(_column(features, "profile_similarity")[1]), "no history is unknown, not dissimilar"
    assert _column(features, "accept_rate")[0] == 1.0
    assert np.exp(_column(features, "log_response_hours")[0]) == pytest.approx(2.0)
    assert _column(features, "reads_language").tolist() == [1, 0, 1, 0]
    assert _column(features, "specialty_fit")[0] > 0.9 > _column(features, "specialty_fit")[2]

    a_week_later = T0 + timedelta(days=8)
    activity.advance(a_week_later)
    features = activity.features(_case("cardiology", at=a_week_later), everyone)
    assert _column(features, "load_24h")[0] == 0 and _column(features, "answers_7d")[0] == 0
    assert _column(features, "answers_30d")[0] == 1 and _column(features, "answers_total")[0] == 1


def test_local_hour_follows_each_doctors_time_zone() -> None:
    hours = DoctorActivity(DOCTORS, dim=2).local_hours(datetime(2025, 7, 1, 12, 0, tzinfo=UTC))
    assert hours.tolist() == [14.0, 8.0, 6.0, 13.0]  # Madrid CEST, New York EDT, Mexico City CST, London BST


def test_candidates_are_specialty_doctors_and_similar_case_answerers_never_the_author() -> None:
    activity = DoctorActivity(DOCTORS, dim=2)
    case = _case("cardiology", similar={"derm": 2})
    chosen = {DOCTORS[i].doctor_id for i in activity.candidates(case, top_specialties=1)}
    assert chosen == {"cardio-es", "cardio-en", "derm"}
    authored = CaseContext(case.vector, "es", T0, case.specialty_probabilities, {}, author_id="cardio-es")
    assert "cardio-es" not in {DOCTORS[i].doctor_id for i in activity.candidates(authored, top_specialties=1)}


def test_rules_keep_language_soft_and_take_overloaded_doctors_out() -> None:
    activity = DoctorActivity(DOCTORS, dim=2)
    for k in range(3):
        activity.record_answer(
            "cardio-es", case_vector=_vector(1, 0), posted_at=T0, answered_at=T0 + timedelta(minutes=k)
        )
    now = T0 + timedelta(hours=1)
    activity.advance(now)
    case = _case("cardiology", language="es", at=now)
    candidates = np.array([0, 1])
    features = activity.features(case, candidates)
    scores = apply_rules(np.array([0.9, 0.8]), features, RoutingRules(load_cap=3, language_penalty=0.5))
    assert scores[1] == pytest.approx(0.4), "a doctor who cannot read Spanish is down-weighted, not dropped"
    assert scores[0] < 0, "over the load cap: out of routing"
    ranked = rank_doctors(activity, candidates, features, scores, language="es", top_codes={"cardiology"})
    assert [d.doctor_id for d in ranked] == ["cardio-en"]
    assert "does not read Spanish: the platform translates" in ranked[0].reasons
    assert "cardiology" in ranked[0].reasons


def test_reasons_cite_similar_cases_and_language() -> None:
    activity = DoctorActivity(DOCTORS, dim=2)
    case = _case("pediatric_pulmonology", language="en", similar={"peds-pulm": 4})
    features = activity.features(case, np.array([3]))
    reasons = doctor_reasons(activity, 3, features[0], language="en", top_codes={"pediatric_pulmonology"})
    assert reasons[:3] == ("answered 4 similar cases", "pediatric pulmonology", "reads English")


def test_ranker_learns_who_answers() -> None:
    rng = np.random.default_rng(0)
    features, answered = [], []
    for _ in range(200):
        x = rng.random((30, len(FEATURES)))
        y = x[:, FEATURES.index("similar_cases_answered")] > 0.8
        features.append(x)
        answered.append(y)
    ranker = DoctorRanker().fit(features, answered)
    test = rng.random((500, len(FEATURES)))
    scores = ranker.score(test)
    truth = test[:, FEATURES.index("similar_cases_answered")] > 0.8
    assert scores[truth].min() > scores[~truth].max() - 0.2
    assert ranker.score(np.zeros((0, len(FEATURES)))).shape == (0,)


def test_rank_metrics_count_missing_items_as_misses() -> None:
    metrics = rank_metrics([1, 3, None, 20], k=10)
    assert metrics["recall@10"] == 0.5
    assert metrics["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 20) / 4)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / np.log2(4)) / 4)
    uniform = random_rank_metrics(1000)
    assert uniform["recall@10"] == 0.01
    simulated = rank_metrics(list(np.random.default_rng(1).integers(1, 1001, size=20000)))
    assert simulated["recall@10"] == pytest.approx(uniform["recall@10"], abs=0.003)


def test_doctors_join_and_change_profile_without_losing_history() -> None:
    activity = DoctorActivity(DOCTORS, dim=2)
    activity.record_answer(
        "derm", case_vector=_vector(1, 0), posted_at=T0, answered_at=T0 + timedelta(hours=1)
    )
    newcomer = DoctorProfile("cardio-mx", ("cardiology",), (), ("es",), "America/Mexico_City")
    activity.upsert_doctor(newcomer)
    moved = DoctorProfile("derm", ("dermatology", "allergy_immunology"), (), ("en",), "Asia/Tokyo")
    activity.upsert_doctor(moved)
    assert len(activity) == 5
    features = activity.features(_case("cardiology", language="es"), np.arange(5))
    assert _column(features, "answers_total").tolist() == [0, 0, 1, 0, 0]
    assert _column(features, "reads_language").tolist() == [1, 0, 0, 0, 1]
    chosen = {
        activity.doctors[i].doctor_id for i in activity.candidates(_case("cardiology"), top_specialties=1)
    }
    assert "cardio-mx" in chosen
    with pytest.raises(ValueError, match="unique"):
        DoctorActivity([*DOCTORS, DOCTORS[0]], dim=2)
