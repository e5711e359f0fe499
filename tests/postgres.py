"""A throwaway PostgreSQL schema per test scope, on the server the development machines run.

Tests take the server from CASEMATCH_TEST_POSTGRES_URL (default: 127.0.0.1:5432, database
`test`, trust auth) and skip, saying why, when it does not answer.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, make_url, text

from service.store.database import normalise_url

POSTGRES_URL = os.environ.get(
    "CASEMATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@functools.cache
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it answers); asked once per session."""
    engine = create_engine(normalise_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        where = make_url(POSTGRES_URL).render_as_string(hide_password=True)
        return (
            f"PostgreSQL at {where} does not answer ({type(error).__name__}); set CASEMATCH_TEST_POSTGRES_URL"
        )
    finally:
        engine.dispose()
    return None


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """The URL of a fresh, empty schema (dropped afterwards); skips the test when there is no server."""
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    schema = f"casematch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = normalise_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
