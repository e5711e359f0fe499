"""Doctor features use only the past; serving rules and reasons do what the product promises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from ml.evaluation.ranking import random_rank_metrics, rank_metrics
from ml.models.doctor_ranker import FEATURES, DoctorRanker, RoutingRules, apply_rules
from ml.reasons import CODES as REASON_CODES
from ml.reasons import Reason
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
    english = [r.english for r in ranked[0].reasons]
    assert "does not read Spanish: the platform translates" in english
    assert "cardiology" in english
    assert Reason("needs_translation", {"language": "es"}) in ranked[0].reasons


def test_reasons_cite_similar_cases_and_language() -> None:
    activity = DoctorActivity(DOCTORS, dim=2)
    case = _case("pediatric_pulmonology", language="en", similar={"peds-pulm": 4})
    features = activity.features(case, np.array([3]))
    reasons = doctor_reasons(activity, 3, features[0], language="en", top_codes={"pediatric_pulmonology"})
    assert [r.english for r in reasons[:3]] == [
        "answered 4 similar cases",
        "pediatric pulmonology",
        "reads English",
    ]
    assert reasons[:3] == (
        Reason("answered_similar", {"count": 4}),
        Reason("practises", {"specialties": ("pediatric_pulmonology",)}),
        Reason("reads_language", {"language": "en"}),
    )


def test_every_reason_code_reads_as_english_and_unknown_codes_are_refused() -> None:
    params = {
        "answered_similar": {"count": 1},
        "practises": {"specialties": ("cardiology", "pediatric_cardiology")},
        "follows": {"specialty": "cardiology"},
        "reads_language": {"language": "es"},
        "needs_translation": {"language": "en"},
        "answers_last_30_days": {"count": 12},
        "usually_answers_within": {"minutes": 90},
    }
    assert set(params) == set(REASON_CODES)
    english = {code: Reason(code, p).english for code, p in params.items()}
    assert english == {
        "answered_similar": "answered 1 similar case",
        "practises": "cardiology, pediatric cardiology",
        "follows": "follows cardiology",
        "reads_language": "reads Spanish",
        "needs_translation": "does not read English: the platform translates",
        "answers_last_30_days": "12 answers in the last 30 days",
        "usually_answers_within": "usually answers within 1.5 h",
    }
    assert Reason("usually_answers_within", {"minutes": 25}).english == "usually answers within 25 min"
    with pytest.raises(ValueError, match="unknown reason code 'liked'"):
        Reason("liked", {})


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


def _cardiologists(n: int) -> list[DoctorProfile]:
    return [DoctorProfile(f"cardio-{i}", ("cardiology",), (), ("es",), "Europe/Madrid") for i in range(n)]


def _answer_times(activity: DoctorActivity, doctor_id: str, count: int, at: datetime) -> None:
    for k in range(count):
        activity.record_answer(
            doctor_id, case_vector=_vector(1, 0), posted_at=at, answered_at=at + timedelta(minutes=k)
        )


def test_candidates_are_capped_keeping_similar_case_answerers_then_the_most_active() -> None:
    activity = DoctorActivity([*DOCTORS, *_cardiologists(50)], dim=2)
    for i in range(10):  # cardio-0..9 answered 1..10 times this month
        _answer_times(activity, f"cardio-{i}", i + 1, T0)
    now = T0 + timedelta(days=1)
    activity.advance(now)
    case = CaseContext(
        _vector(1, 0),
        "es",
        now,
        _case("cardiology").specialty_probabilities,
        {"derm": 1, "cardio-40": 2},  # a dermatologist and an inactive cardiologist answered similar cases
        author_id="cardio-9",
    )
    everyone = activity.candidates(case, top_specialties=1, max_candidates=None)
    assert len(everyone) == 2 + 50 + 1 - 1  # cardio-es, cardio-en, the 50, derm; not the author
    capped = {
        activity.doctors[i].doctor_id for i in activity.candidates(case, top_specialties=1, max_candidates=6)
    }
    assert len(capped) == 6
    assert {"derm", "cardio-40"} <= capped, "similar cases' answerers always stay"
    assert "cardio-9" not in capped, "nobody answers their own case, cap or not"
    assert capped - {"derm", "cardio-40"} == {"cardio-8", "cardio-7", "cardio-6", "cardio-5"}
    assert len(activity.candidates(case, top_specialties=1)) == len(everyone), (
        "the default cap is far above 53"
    )


def test_a_cap_above_the_pool_changes_nothing() -> None:
    rng = np.random.default_rng(3)
    doctors = [
        DoctorProfile(f"d{i}", (CODES[i % 7],), (CODES[(i + 3) % 11],), ("en",) if i % 2 else ("es",), "UTC")
        for i in range(300)
    ]
    activity = DoctorActivity(doctors, dim=2)
    for i in rng.integers(300, size=400):
        _answer_times(activity, f"d{i}", 1, T0 + timedelta(hours=float(rng.uniform(0, 48))))
    for code in CODES[:7]:
        case = _case(code, at=T0 + timedelta(days=3), similar={"d5": 1, "d299": 3})
        activity.advance(case.posted_at)
        uncapped = activity.candidates(case, max_candidates=None, most_active=5)
        assert np.array_equal(
            activity.candidates(case, max_candidates=len(uncapped), most_active=5), uncapped
        )
        assert np.array_equal(activity.candidates(case, max_candidates=10**6, most_active=5), uncapped)
        np.testing.assert_array_equal(activity.features(case, uncapped), activity.features(case, uncapped))
        assert (
            len(activity.candidates(case, max_candidates=len(uncapped) - 1, most_active=5))
            == len(uncapped) - 1
        )


def test_adding_doctors_one_by_one_grows_capacity_geometrically() -> None:
    activity = DoctorActivity(DOCTORS, dim=2)
    activity.record_answer(
        "derm", case_vector=_vector(1, 0), posted_at=T0, answered_at=T0 + timedelta(hours=1)
    )
    capacities = [activity.capacity]
    buffer = activity.profile_sum.base
    copies = 0
    for profile in _cardiologists(2_000):
        activity.upsert_doctor(profile)
        if activity.profile_sum.base is not buffer:  # a new buffer: every row was copied
            copies += 1
            buffer = activity.profile_sum.base
            capacities.append(activity.capacity)
    assert len(activity) == 2_004 and activity.capacity >= len(activity)
    assert copies == len(capacities) - 1 <= 10, capacities  # log2(2004 / 4) ~ 9, not one per doctor
    assert all(b >= 2 * a for a, b in pairwise(capacities)), capacities
    assert activity.answers[activity.slot["derm"]] == 1, "history survives the growth"
    assert np.isnan(activity.last_answer_hours[-1]) and activity.specialty_mask[-1, CODES.index("cardiology")]
    chosen = activity.candidates(_case("cardiology"), top_specialties=1, max_candidates=None)
    assert len(chosen) == 2 + 2_000


def test_windows_expire_as_a_queue_would_with_late_and_many_answers() -> None:
    """The window log (two arrays, expired by binary search, trimmed when full)
    counts what a queue of (time, doctor) per window, popped from the front, counted."""
    rng = np.random.default_rng(7)
    activity = DoctorActivity(DOCTORS, dim=2)
    queue: list[tuple[datetime, int]] = []
    at = T0
    for _ in range(3 * 4_096 + 17):
        at += timedelta(minutes=float(rng.exponential(40)))
        answered = at - timedelta(minutes=float(rng.choice([0, 0, 0, 90])))  # a few arrive late
        doctor = int(rng.integers(len(DOCTORS)))
        activity.record_answer(
            DOCTORS[doctor].doctor_id, case_vector=_vector(1, 0), posted_at=answered, answered_at=answered
        )
        queue.append((answered, doctor))
    for now in (at, at + timedelta(hours=23), at + timedelta(days=8), at + timedelta(days=31)):
        activity.advance(now)
        for name, width in (
            ("load_24h", timedelta(hours=24)),
            ("answers_7d", timedelta(days=7)),
            ("answers_30d", timedelta(days=30)),
        ):
            first = 0
            while first < len(queue) and queue[first][0] <= now - width:
                first += 1
            expected = np.bincount([d for _, d in queue[first:]], minlength=len(DOCTORS))
            assert activity.window_counts[name].tolist() == expected.tolist(), (name, now)
    assert activity.nbytes() < 100_000, (
        "the log holds about the last 30 days (~1,100 answers), not all 12,305"
    )


def test_a_saved_activity_loads_back_to_the_same_features_for_current_profiles(tmp_path: Path) -> None:
    activity = DoctorActivity([*DOCTORS, *_cardiologists(30)], dim=2)
    rng = np.random.default_rng(11)
    for k in range(200):
        doctor = activity.doctors[int(rng.integers(len(activity)))].doctor_id
        at = T0 + timedelta(hours=k)
        activity.record_answer(doctor, case_vector=_vector(1, float(k % 3)), posted_at=at, answered_at=at)
        if k % 7 == 0:
            activity.record_acceptance(doctor)
    activity.save(tmp_path / "activity.npz", watermark=412)
    later = T0 + timedelta(days=9)
    case = _case("cardiology", at=later, similar={"cardio-3": 2})
    newcomer = DoctorProfile("cardio-new", ("cardiology",), (), ("es",), "Europe/Madrid")
    # the store's profiles now: one doctor left, one joined, in another order
    profiles = [newcomer, *reversed([d for d in activity.doctors if d.doctor_id != "cardio-es"])]
    loaded, watermark = DoctorActivity.load(tmp_path / "activity.npz", profiles, dim=2)
    assert watermark == 412 and len(loaded) == len(activity)
    for a in (activity, loaded):
        a.advance(later)
    ids = [d.doctor_id for d in activity.doctors if d.doctor_id != "cardio-es"]
    before = activity.features(case, np.array([activity.slot[i] for i in ids]))
    after = loaded.features(case, np.array([loaded.slot[i] for i in ids]))
    np.testing.assert_array_equal(before, after)
    assert loaded.answers[loaded.slot["cardio-new"]] == 0 and np.isnan(loaded.last_answer_hours[0])
    a_month_later = later + timedelta(days=30)
    for a in (activity, loaded):
        a.advance(a_month_later)
    assert loaded.window_counts["answers_30d"].sum() == 0 == activity.window_counts["answers_30d"].sum()
