from pathlib import Path

import pytest

from service.settings import Settings


def test_defaults_put_database_and_mlflow_in_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("CASEMATCH_HOME", "CASEMATCH_DATABASE_URL", "CASEMATCH_MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings()
    assert settings.home == tmp_path / "var"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'casematch.db'}"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'var' / 'mlflow.db'}"
    assert not (tmp_path / "var").exists(), "loading settings must not create folders"


def test_environment_overrides_each_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMATCH_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("CASEMATCH_DATABASE_URL", "postgresql+psycopg://127.0.0.1:5432/test")
    monkeypatch.delenv("CASEMATCH_MLFLOW_TRACKING_URI", raising=False)
    settings = Settings()
    assert settings.home == tmp_path / "state"
    assert settings.database_url == "postgresql+psycopg://127.0.0.1:5432/test"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}"
