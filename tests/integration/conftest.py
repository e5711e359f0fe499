"""Fixtures the store's integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import postgres_schema_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database (no schema yet) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'casematch.db'}"
        return
    with postgres_schema_url() as url:
        yield url
