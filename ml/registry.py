"""The model registry: which `case-router` version is the champion, loading it, promoting another.

A registered version is an MLflow pyfunc model whose artifact is the `RoutingBundle` folder
(`ml.training.tracking` logs it). The service reads the bundle itself (`load_bundle`), never the
pyfunc wrapper, so a version loads whatever module the wrapper was written against. Promotion
compares the candidate's dev metrics with the champion's and moves the `champion` alias only if
none is worse by more than the tolerance; the decision and its reasons are written to the
version's tags either way.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.model import PythonModel
from mlflow.tracking import MlflowClient

from ml.matching import post_text
from ml.models.bundle import RoutingBundle

MODEL_NAME = "case-router"
CHAMPION = "champion"
EXPERIMENT = "casematch-routing"
# The dev metrics a candidate must not lose on (higher is better for all of them).
PROMOTION_METRICS = (
    "dev.specialty.synthetic.hit_at_3",
    "dev.specialty.mtsamples.hit_at_3",
    "dev.specialty.codiesp.hit_at_3",
    # "holdout": scored by a ranker that never saw those cases (before 2026-12-04 the dev figure was
    # in-sample, so an older champion has no such metric and is not compared on it)
    "dev.doctors.holdout.served.first_answerer.recall_at_10",
    "dev.urgency.emergent_recall",
)


class NoChampionError(LookupError):
    """The registry has no version behind the champion alias yet."""


class CaseRouterModel(PythonModel):
    """The pyfunc face of a bundle: text in, specialties and urgency out."""

    def load_context(self, context: Any) -> None:
        self.bundle = RoutingBundle.load(Path(context.artifacts["bundle"]))
        self._encoder: Any = None  # loaded on first predict: readers of the bundle alone skip it

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        from ml.embeddings import load_encoder  # deferred: loading the encoder takes seconds

        missing = {"title", "body"} - set(model_input.columns)
        if missing:
            raise ValueError(f"model input lacks columns {sorted(missing)}")
        if self._encoder is None:
            self._encoder = load_encoder(self.bundle.encoder_spec)
            self.bundle.check_encoder(self._encoder.fingerprint.token)
        texts = [
            post_text(str(t), str(b)) for t, b in zip(model_input["title"], model_input["body"], strict=True)
        ]
        predictions = self.bundle.predict_cases(texts, self._encoder.encode_queries(texts))
        return pd.DataFrame(
            {
                "specialties": [
                    json.dumps([[s.code, round(s.probability, 6)] for s in p.specialties])
                    for p in predictions
                ],
                "urgency": [p.urgency for p in predictions],
                "p_emergent": [p.urgency_probabilities["emergent"] for p in predictions],
            }
        )


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    version: int
    promoted: bool
    reasons: tuple[str, ...]


def configure(tracking_uri: str, artifact_root: Path) -> None:
    """Point MLflow at the store; create the experiment with its artifacts under `artifact_root`."""
    # A bundle loads from local files in a second: no download bars in the service's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_root.resolve().as_uri())
    mlflow.set_experiment(EXPERIMENT)


def metric_key(split: str, name: str) -> str:
    """MLflow metric names cannot hold '@': hit@3 becomes hit_at_3."""
    return f"{split}.{name}".replace("@", "_at_")


def promote(version: int | None = None, *, tolerance: float = 0.005) -> PromotionDecision:
    """Move the champion alias to `version` (default: the newest) unless it is worse on dev."""
    client = MlflowClient()
    if version is None:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
        if not versions:
            raise LookupError(f"no versions of {MODEL_NAME} registered yet: run `casematch train` first")
        version = max(int(v.version) for v in versions)
    candidate = client.get_model_version(MODEL_NAME, str(version))
    candidate_metrics = client.get_run(str(candidate.run_id)).data.metrics
    reasons: list[str] = []
    try:
        champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except MlflowException:
        champion = None
    if champion is None:
        promoted = True
        reasons.append("no champion yet")
    elif int(champion.version) == version:
        promoted = True
        reasons.append(f"version {version} already is the champion")
    else:
        champion_metrics = client.get_run(str(champion.run_id)).data.metrics
        champion_tags = client.get_run(str(champion.run_id)).data.tags
        candidate_tags = client.get_run(str(candidate.run_id)).data.tags
        if champion_tags.get("data_hash") != candidate_tags.get("data_hash"):
            reasons.append("note: trained on different data than the champion, so the dev sets differ")
        promoted, compared = compare_metrics(
            candidate_metrics, champion_metrics, PROMOTION_METRICS, tolerance
        )
        reasons += compared
    return record_decision(version, promoted, reasons)


def compare_metrics(
    candidate: Mapping[str, float], champion: Mapping[str, float], names: Sequence[str], tolerance: float
) -> tuple[bool, list[str]]:
    """Whether the candidate loses on none of `names` by more than `tolerance` (higher is better),
    and a reason per metric; a metric the champion lacks is not compared."""
    promoted, reasons = True, []
    for name in names:
        if name not in champion:
            continue
        old, new = champion[name], candidate.get(name)
        if new is None:
            promoted = False
            reasons.append(f"{name}: champion has {old:.4f}, candidate was not evaluated on it")
        elif new < old - tolerance:
            promoted = False
            reasons.append(f"{name}: {new:.4f} < champion {old:.4f} - tolerance {tolerance}")
        else:
            reasons.append(f"{name}: {new:.4f} vs champion {old:.4f}")
    return promoted, reasons


def record_decision(version: int, promoted: bool, reasons: Sequence[str]) -> PromotionDecision:
    """Move the champion alias when promoted; write the decision to the version's tags either way."""
    client = MlflowClient()
    if promoted:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    client.set_model_version_tag(
        MODEL_NAME,
        str(version),
        "promotion",
        ("promoted: " if promoted else "refused: ") + "; ".join(reasons),
    )
    return PromotionDecision(version, promoted, tuple(reasons))


def champion_version() -> int | None:
    try:
        return int(MlflowClient().get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None


def load_bundle(version: int | None = None) -> RoutingBundle:
    """The bundle of a registered version (default: the champion), straight from the registry."""
    if version is None:
        version = champion_version()
        if version is None:
            raise NoChampionError(f"no {CHAMPION} version of {MODEL_NAME}: run `casematch bootstrap`")
    # The bundle artifact alone: the pyfunc wrapper beside it imports the module it was logged with,
    # which a version registered by older code may name differently.
    with tempfile.TemporaryDirectory(prefix="case-router-") as folder:
        uri = f"models:/{MODEL_NAME}/{version}"
        model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))
        return RoutingBundle.load(model_dir / "artifacts" / "bundle")
