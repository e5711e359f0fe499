"""Urgency catches emergencies, novelty ranks the unfamiliar high, bundles refuse tampering."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.embeddings import FingerprintMismatchError
from ml.hashing import sha256_file
from ml.models.bundle import MOVED_MODULES, BundleIntegrityError, RoutingBundle
from ml.models.doctor_ranker import DoctorRanker, RoutingRules
from ml.models.novelty import NoveltyScorer
from ml.models.specialty import SpecialtyRouter, SpecialtyRouterConfig
from ml.models.urgency import UrgencyConfig, UrgencyModel, threshold_for_precision

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


def _small_bundle() -> tuple[RoutingBundle, list[str], np.ndarray]:
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
    return bundle, texts, vectors


def test_bundle_round_trips_and_refuses_tampering_or_another_encoder(tmp_path: Path) -> None:
    bundle, texts, vectors = _small_bundle()
    router = bundle.router
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


def test_a_bundle_pickled_before_the_models_moved_still_loads(tmp_path: Path) -> None:
    """Versions registered before 2026-12-07 name their classes under ml.training.*."""
    bundle, texts, vectors = _small_bundle()
    folder = bundle.save(tmp_path / "bundle")
    old = pickle.dumps(bundle, protocol=0)  # protocol 0 names each class on a line of its own
    for old_name, new_name in MOVED_MODULES.items():
        old = old.replace(f"c{new_name}\n".encode(), f"c{old_name}\n".encode())
    assert b"cml.training.specialty\n" in old and b"cml.models." not in old
    (folder / "bundle.joblib").write_bytes(old)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(
        json.dumps(manifest | {"sha256": sha256_file(folder / "bundle.joblib")})
    )
    loaded = RoutingBundle.load(folder)
    assert type(loaded.router) is SpecialtyRouter
    np.testing.assert_array_equal(
        loaded.specialty_probabilities(texts, vectors), bundle.specialty_probabilities(texts, vectors)
    )
    assert "ml.training.specialty" not in sys.modules  # the old names were only lent for the load
