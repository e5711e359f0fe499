"""Everything serving needs from one training run, saved to and loaded from one folder.

The folder holds `bundle.joblib` (the fitted models) and `manifest.json` (its SHA-256, the
encoder fingerprint the models were trained with, library versions). Loading checks the digest,
and the caller checks the fingerprint against its encoder: vectors from another encoder would
silently give wrong specialties and doctors. Only load bundles from your own model registry:
joblib files are pickles.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import sklearn

from ml.embeddings.base import FingerprintMismatchError, Vectors
from ml.hashing import sha256_file
from ml.models.doctor_ranker import DoctorRanker, RoutingRules
from ml.models.novelty import NoveltyScorer
from ml.models.specialty import RankedSpecialty, SpecialtyRouter
from ml.models.tfidf import SharedAnalysis
from ml.models.urgency import LEVELS, UrgencyModel

BUNDLE_FILE = "bundle.joblib"
MANIFEST_FILE = "manifest.json"
# Where the bundle's classes lived until 2026-12-07 (ml/training/): a bundle pickled before then
# names them there, and still loads.
MOVED_MODULES = {
    f"ml.training.{name}": f"ml.models.{name}"
    for name in ("specialty", "urgency", "novelty", "tfidf", "doctor_ranker", "zero_shot", "bundle")
}


class BundleIntegrityError(ValueError):
    """A saved bundle's files do not match its manifest."""


@dataclass(frozen=True, slots=True)
class CasePrediction:
    specialties: tuple[RankedSpecialty, ...]  # the top k
    specialty_probabilities: npt.NDArray[np.float64]  # all 63, taxonomy order (the doctor ranker reads them)
    urgency: str
    urgency_probabilities: dict[str, float]


@dataclass
class RoutingBundle:
    router: SpecialtyRouter
    urgency: UrgencyModel
    ranker: DoctorRanker
    novelty: NoveltyScorer
    rules: RoutingRules
    encoder_spec: str  # how to load the encoder (CASEMATCH_ENCODER syntax)
    encoder_fingerprint: str
    candidates: dict[str, int] = field(default_factory=dict)  # DoctorActivity.candidates settings

    def predict_cases(self, texts: list[str], vectors: Vectors, *, k: int = 3) -> list[CasePrediction]:
        """Specialties (calibrated) and urgency for each case text and its vector."""
        views = self._text_views().transform(texts)  # both models' TF-IDF views, router's first
        routed = len(self.router.vectorizers)
        probabilities = self.router.predict_proba_from_views(views[:routed], vectors)
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        urgency = self.urgency.predict_proba_from_views(views[routed:])
        labels = self.urgency.levels(urgency)
        return [
            CasePrediction(
                tuple(RankedSpecialty(self.router.codes[j], float(p[j])) for j in order),
                p,
                label,
                {level: float(x) for level, x in zip(LEVELS, row, strict=True)},
            )
            for p, order, label, row in zip(probabilities, top, labels, urgency, strict=True)
        ]

    def _text_views(self) -> SharedAnalysis:
        """Both models' text views, analysing each post once (built on first use, never saved)."""
        analysis: SharedAnalysis | None = self.__dict__.get("_analysis")
        if analysis is None:
            analysis = SharedAnalysis([*self.router.vectorizers, *self.urgency.vectorizers])
            self.__dict__["_analysis"] = analysis
        return analysis

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items() if name != "_analysis"}

    def specialty_probabilities(self, texts: list[str], vectors: Vectors) -> npt.NDArray[np.float64]:
        return self.router.predict_proba(texts, vectors)

    def check_encoder(self, fingerprint: str) -> None:
        if fingerprint != self.encoder_fingerprint:
            raise FingerprintMismatchError(
                expected=self.encoder_fingerprint, actual=fingerprint, what="routing bundle"
            )

    def save(self, folder: Path, *, extra: dict[str, Any] | None = None) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, folder / BUNDLE_FILE, compress=3)
        manifest = {
            "sha256": sha256_file(folder / BUNDLE_FILE),
            "encoder_spec": self.encoder_spec,
            "encoder_fingerprint": self.encoder_fingerprint,
            "versions": {
                "scikit-learn": sklearn.__version__,
                "numpy": np.__version__,
                "joblib": joblib.__version__,
            },
            **(extra or {}),
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path) -> RoutingBundle:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        actual = sha256_file(folder / BUNDLE_FILE)
        if actual != manifest["sha256"]:
            raise BundleIntegrityError(
                f"{folder / BUNDLE_FILE} has SHA-256 {actual}, manifest says {manifest['sha256']}"
            )
        with _moved_module_names():
            bundle = joblib.load(folder / BUNDLE_FILE)
        if not isinstance(bundle, cls):
            raise BundleIntegrityError(
                f"{folder / BUNDLE_FILE} holds a {type(bundle).__name__}, not a RoutingBundle"
            )
        return bundle


@contextmanager
def _moved_module_names() -> Iterator[None]:
    """Let the unpickler find a moved class under its old module name, for the length of one load."""
    aliased = [old for old in MOVED_MODULES if old not in sys.modules]
    for old in aliased:
        sys.modules[old] = importlib.import_module(MOVED_MODULES[old])
    try:
        yield
    finally:
        for old in aliased:
            sys.modules.pop(old, None)
