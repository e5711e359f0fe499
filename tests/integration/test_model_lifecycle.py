"""The MLflow loop on the committed sample: bootstrap, reload, retrain, refuse a worse model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ml.embeddings import load_encoder
from ml.matching import post_text
from ml.registry import MODEL_NAME, champion_version, configure, load_bundle
from service.cli import app

runner = CliRunner()
SPANISH_POST = {
    "title": "Niño de 9 años con Fontan que expulsa moldes ramificados al toser",
    "body": "Operado de Fontan. Tos con expulsión de moldes gomosos ramificados. Satura 85%. ¿Ideas?",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CASEMATCH_HOME", str(home))
        patch.setenv("HF_HUB_OFFLINE", "1")
        result = runner.invoke(app, ["bootstrap", "--world", "sample", "--corpora", ""])
        assert result.exit_code == 0, result.output
        configure(f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts")
        yield home


def test_bootstrap_registers_a_champion_and_is_idempotent(home: Path) -> None:
    assert champion_version() == 1
    again = runner.invoke(app, ["bootstrap", "--world", "sample", "--corpora", ""])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert champion_version() == 1
    assert (home / "mlartifacts").is_dir(), "artifacts belong in the home, not in the working folder"


def test_registered_model_predicts_what_the_trained_bundle_predicts(home: Path) -> None:
    bundle = load_bundle()
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    served = model.predict(pd.DataFrame([SPANISH_POST]))
    encoder = load_encoder(bundle.encoder_spec)
    text = post_text(SPANISH_POST["title"], SPANISH_POST["body"])
    direct = bundle.predict_cases([text], encoder.encode_queries([text]))[0]
    assert json.loads(served["specialties"][0]) == [
        [s.code, round(s.probability, 6)] for s in direct.specialties
    ]
    assert served["urgency"][0] == direct.urgency
    assert direct.specialties[0].code in {"pediatric_pulmonology", "pediatric_cardiology", "pulmonology"}
    probabilities = bundle.specialty_probabilities([text], encoder.encode_queries([text]))
    assert probabilities.shape == (1, 63) and np.isclose(probabilities.sum(), 1.0)


def test_promote_refuses_a_worse_model_and_says_why(home: Path, tmp_path: Path) -> None:
    worse = tmp_path / "worse.yaml"
    worse.write_text("specialty: {c: 0.00001, zero_shot: false, char_features: 0}\n")
    trained = runner.invoke(app, ["train", "--world", "sample", "--corpora", "", "--config", str(worse)])
    assert trained.exit_code == 0, trained.output
    refused = runner.invoke(app, ["promote"])
    assert refused.exit_code == 1
    assert "hit_at_3" in refused.output and "not promoted" in refused.output
    assert champion_version() == 1
    tags = mlflow.MlflowClient().get_model_version(MODEL_NAME, "2").tags
    assert tags["promotion"].startswith("refused:")


def test_train_rejects_a_bad_config(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("specialty: {c: -1}\n")
    result = runner.invoke(app, ["train", "--world", "sample", "--config", str(bad)])
    assert result.exit_code == 2 and "training config" in result.output
