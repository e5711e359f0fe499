"""A platform with no history still gets a champion: real corpora, zero-shot descriptions, rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from ml.data import DoctorRecord, PlatformData, TimeSplit
from ml.data.synthetic import RAW, SyntheticWorld
from ml.embeddings import load_encoder
from ml.models.doctor_ranker import FEATURES
from ml.paths import SAMPLE_WORLD_DIR
from ml.routing.doctors import CaseContext, DoctorActivity
from ml.training.interactions import doctor_profiles
from ml.training.pipeline import TrainingConfig, train

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.slow  # encodes MTSamples (long notes): minutes with a cold embedding cache
def test_an_empty_platform_trains_a_usable_bundle_and_says_what_is_untrained(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    cache_plugin = getattr(pytestconfig, "cache", None)  # shared with the quality gates' encodings
    folder = cache_plugin.mkdir("embeddings") if cache_plugin else tmp_path
    encoder = load_encoder("use", threads=2, cache_path=folder / "use.sqlite")
    doctors = (
        DoctorRecord("d-cardio", ("cardiology",), (), ("en",), "US", "America/New_York"),
        DoctorRecord("d-derm", ("dermatology",), (), ("en",), "US", "America/New_York"),
    )
    empty = PlatformData((), (), (), doctors, provenance={"source": "store"})
    prior = SyntheticWorld(SAMPLE_WORLD_DIR, deidentify=RAW)
    result = train(
        TrainingConfig(corpora=("mtsamples",)),
        empty,
        TimeSplit(NOW, NOW),
        encoder,
        encoder_spec="use",
        urgency_prior=(prior.read(), prior.split),
    )
    notes = " | ".join(result.notes)
    assert "specialties: no resolved store cases" in notes and "zero-shot" in notes
    assert "doctors: no answers" in notes and "urgency:" in notes and "novelty:" in notes
    assert result.metrics["dev"]["specialty.mtsamples.hit@3"] > 0.5  # the real corpus still teaches it
    bundle = result.bundle
    text = "Crushing chest pain radiating to the left arm, ST elevation in V2-V4, troponin rising."
    prediction = bundle.predict_cases([text], encoder.encode_queries([text]))[0]
    assert "cardiology" in [s.code for s in prediction.specialties]
    assert prediction.urgency == "emergent"
    # doctors: the cardiologist first for a cardiac case, by rule (the ranker learned nothing)
    activity = DoctorActivity(doctor_profiles(empty), encoder.dim)
    context = CaseContext(
        encoder.encode_queries([text])[0], "en", NOW, prediction.specialty_probabilities, {}
    )
    candidates = np.arange(len(doctors))
    scores = bundle.ranker.score(activity.features(context, candidates))
    assert not bundle.ranker.trained and len(FEATURES) == activity.features(context, candidates).shape[1]
    assert doctors[int(np.argmax(scores))].doctor_id == "d-cardio"
    assert 0.0 <= bundle.novelty.score(np.zeros((1, 0)))[0] <= 1.0
