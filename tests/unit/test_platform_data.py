"""Typed platform data: time splits by share, the synthetic world as records, cleaned posts cached."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from ml.data import TimeSplit
from ml.data.synthetic import RAW, SyntheticWorld
from ml.paths import SAMPLE_WORLD_DIR
from ml.privacy.batch import DeidentifiedCache, deidentify_posts

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_split_by_share_keeps_the_newest_cases_for_test() -> None:
    posted = [T0 + timedelta(days=d) for d in (9, 0, 5, 1, 8, 2, 7, 3, 6, 4)]  # any order
    split = TimeSplit.by_share(posted, dev=0.1, test=0.1)
    assert Counter(split.of(t) for t in posted) == {"train": 8, "dev": 1, "test": 1}
    assert split.of(T0 + timedelta(days=8)) == "dev" and split.of(T0 + timedelta(days=9)) == "test"
    assert split.of(T0 + timedelta(days=30)) == "test", "a case posted later is in the newest split"
    nothing_held = TimeSplit.by_share(posted, dev=0, test=0)
    assert {nothing_held.of(t) for t in posted} == {"train"}
    with pytest.raises(ValueError, match="sum below 1"):
        TimeSplit.by_share(posted, dev=0.6, test=0.5)
    with pytest.raises(ValueError, match="no cases"):
        TimeSplit.by_share([])


def test_the_sample_world_reads_as_records_with_its_own_months() -> None:
    data = SyntheticWorld(SAMPLE_WORLD_DIR, deidentify=RAW).read()
    assert data.counts() == {
        "cases": 2000,
        "answers": 8755,
        "resolutions": 1772,
        "doctors": 500,
        "feedback": 0,
    }
    assert len(data.truth) == 2000 and data.provenance["source"] == "synthetic"
    months = Counter(SyntheticWorld.split.of(c.created_at) for c in data.cases)
    assert set(months) == {"train", "dev", "test"} and months["train"] > months["dev"]
    assert all(r.specialties and r.resolved_at > T0 - timedelta(days=800) for r in data.resolutions)


def test_posts_are_cleaned_once_and_then_read_from_the_cache(tmp_path: Path) -> None:
    calls: list[str] = []

    def clean(text: str, language: str) -> str:
        calls.append(text)
        return text.replace("Ana", "[NAME]")

    posts = [("Ana, 3 años", "Tos de Ana", "es"), ("Cough", "No names here", "en")]
    cache = DeidentifiedCache(tmp_path / "posts.sqlite", "fp-1")
    first = deidentify_posts(posts, clean, cache=cache)
    assert first == [("[NAME], 3 años", "Tos de [NAME]"), ("Cough", "No names here")] and len(calls) == 4
    assert deidentify_posts(posts, clean, cache=cache) == first and len(calls) == 4, "all from the cache"
    other_model = DeidentifiedCache(tmp_path / "posts.sqlite", "fp-2")
    deidentify_posts(posts[:1], clean, cache=other_model)
    assert len(calls) == 6, "another de-identifier's output is never reused"


def test_verdicts_on_similar_cases_are_scored_from_the_first_one() -> None:
    from ml.data import CaseRecord, FeedbackRecord, PlatformData
    from ml.training.pipeline import TrainingData, _feedback_slice

    cases = tuple(CaseRecord(f"c{i}", "t", "x", "en", "a", T0 + timedelta(days=i)) for i in range(4))
    vectors = np.array([[1, 0], [0.9, 0.44], [0, 1], [0.99, 0.14]], dtype=np.float32)
    verdicts = (
        FeedbackRecord("c3", True, T0 + timedelta(days=5), similar_case_id="c0"),  # cosine 0.99
        FeedbackRecord("c3", False, T0 + timedelta(days=5), similar_case_id="c2"),  # cosine 0.14
        FeedbackRecord("c3", True, T0 + timedelta(days=5), doctor_id="d1"),  # not about a similar case
    )
    platform = PlatformData(cases, (), (), (), feedback=verdicts)
    split = TimeSplit(T0 + timedelta(days=3), T0 + timedelta(days=9))
    data = TrainingData(
        platform, split, "store", ["x"] * 4, [split.of(c.created_at) for c in cases], vectors, {}
    )
    assert _feedback_slice(data, "dev") == {
        "feedback.similar_cases.verdicts": 2.0,
        "feedback.similar_cases.useful_share": 0.5,
        "feedback.similar_cases.cosine_auc": 1.0,
    }
    assert _feedback_slice(data, "train") == {}, "no verdict on a train case yet: no slice"
