"""Fixtures the integration tests share: empty databases on each backend, a trained registry."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from tests.postgres import postgres_schema_url

BACKENDS = ["sqlite", "postgresql"]


def _empty_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'casematch.db'}"
        return
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database (no schema yet) on each backend."""
    yield from _empty_database(request.param, tmp_path_factory)


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One empty database per backend for a whole module (for a service the module's tests share)."""
    yield from _empty_database(request.param, tmp_path_factory)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A home whose MLflow registry holds a champion trained on the small world: bootstrapped once
    per session. Use `registry_copy` to serve it: promotions then stay in the copy."""
    home = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CASEMATCH_HOME", str(home))
        env.setenv("CASEMATCH_SYNTHETIC_DIR", str(small_world_dir.parent))
        env.setenv("HF_HUB_OFFLINE", "1")
        trained = CliRunner().invoke(cli, ["bootstrap", "--world", small_world_dir.name, "--corpora", ""])
    assert trained.exit_code == 0, trained.output
    return home


def registry_copy(trained_home: Path, home: Path) -> str:
    """The tracking URI of a copy of `trained_home`'s registry in `home` (the model artifacts stay
    where they were logged and are only read)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trained_home / "mlflow.db", home / "mlflow.db")
    return f"sqlite:///{home / 'mlflow.db'}"
