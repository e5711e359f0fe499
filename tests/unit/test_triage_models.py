"""Urgency catches emergencies, novelty ranks the unfamiliar high, bundles refuse tampering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.embeddings import FingerprintMismatchError
from ml.training.bundle import BundleIntegrityError, RoutingBundle
from ml.training.doctor_ranker import DoctorRanker, RoutingRules
from ml.training.novelty import NoveltyScorer
from ml.training.specialty import SpecialtyRouter, SpecialtyRouterConfig
from ml.training.urgency import UrgencyConfig, UrgencyModel, threshold_for_precision

EMERGENT = [
    "sudden severe chest pain, hypotension",
    "dolor torácico súbito con hipotensión",
    "status epilepticus",
]
URGENT = ["fever and productive cough for three days", "fiebre y tos productiva", "worsening jaundice"]
ROUTINE = ["chronic itchy rash for months", "exantema crónico pruriginoso", "mild knee pain for a year"]


def _texts(repeat: int = 4) -> tuple[list[str], list[str]]:
    texts = (EMERGENT + URGENT + ROUTINE) * repeat
    levels = (["emergent"] * 3 + ["urgent"] * 3 + ["routine"] * 3) * repeat
    return texts, levels


def test_urgency_flags_emergencies_and_gives_probabilities() -> None:
    texts, levels = _texts()
    model = UrgencyModel(UrgencyConfig(min_precision=0.95)).fit(texts, levels)
    held_out = [
        "sudden chest pain and hypotension",
        "status epilepticus again",
        "fever with cough",
        "itchy rash",
    ]
    model.calibrate(held_out, ["emergent", "emergent", "urgent", "routine"])
    assert model.predict(["sudden chest pain with hypotension", "itchy rash for months"]) == [
        "emergent",
        "routine",
    ]
    p = model.predict_proba(["status epilepticus"])
    assert p.shape == (1, 3) and p.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown urgency"):
        UrgencyModel().fit(["x"], ["critical"])


def test_threshold_keeps_the_asked_precision() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    positive = np.array([True, True, False, True, False])
    assert threshold_for_precision(scores, positive, 0.75) == 0.6  # 3 of the top 4 are right
    assert threshold_for_precision(scores, positive, 1.0) == 0.8
    # every positive is found at 0.6 already: going lower would only add false alarms
    assert threshold_for_precision(scores, positive, 0.5) == 0.6
    assert threshold_for_precision(scores, np.zeros(5, dtype=bool), 0.5) is None


def test_novelty_is_the_share_of_reference_cases_closer_to_the_past() -> None:
    reference = np.linspace(0.2, 0.9, 100)[:, None].repeat(5, axis=1)
    scorer = NoveltyScorer().fit(reference)
    familiar, typical, novel = scorer.score(np.array([[0.95] * 5, [0.55] * 5, [0.1] * 5]))
    assert familiar == 0.0 and novel == 1.0 and 0.4 < typical < 0.6
    assert scorer.score(np.zeros((1, 0)))[0] == 1.0, "nothing resolved yet: as novel as it gets"


def test_bundle_round_trips_and_refuses_tampering_or_another_encoder(tmp_path: Path) -> None:
    texts, levels = _texts()
    vectors = np.eye(len(texts), 4, dtype=np.float32)
    router = SpecialtyRouter(SpecialtyRouterConfig(zero_shot=False, word_features=100, char_features=100))
    router.fit(texts, vectors, [("cardiology",) if "chest" in t else ("dermatology",) for t in texts])
    bundle = RoutingBundle(
        router=router,
        urgency=UrgencyModel().fit(texts, levels),
        ranker=DoctorRanker(),
        novelty=NoveltyScorer().fit(np.ones((3, 5))),
        rules=RoutingRules(),
        encoder_spec="use",
        encoder_fingerprint="enc-1",
    )
    served = bundle.predict_cases(texts, vectors)  # the text views shared between both models
    np.testing.assert_allclose(
        [p.specialty_probabilities for p in served], router.predict_proba(texts, vectors), rtol=1e-9
    )
    urgency = bundle.urgency.predict_proba(texts)
    assert [p.urgency for p in served] == bundle.urgency.predict(texts)
    np.testing.assert_allclose([list(p.urgency_probabilities.values()) for p in served], urgency, rtol=1e-9)
    folder = bundle.save(tmp_path / "bundle")
    loaded = RoutingBundle.load(folder)
    query = ["chest pain"]
    np.testing.assert_array_equal(
        loaded.specialty_probabilities(query, vectors[:1]), bundle.specialty_probabilities(query, vectors[:1])
    )
    with pytest.raises(FingerprintMismatchError):
        loaded.check_encoder("enc-2")
    (folder / "bundle.joblib").write_bytes((folder / "bundle.joblib").read_bytes() + b"x")
    with pytest.raises(BundleIntegrityError):
        RoutingBundle.load(folder)
