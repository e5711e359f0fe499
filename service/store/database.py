"""Engines for the case store: SQLite (WAL, foreign keys, writers that wait) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.pool import ConnectionPoolEntry

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits for another writer before giving up
_WRITE_OPTION = "casematch_write"


def normalise_url(database_url: str | URL) -> URL:
    """The URL with a driver SQLAlchemy can load: plain `postgresql://` means psycopg 3 here,
    not SQLAlchemy's default psycopg2 (which is not installed)."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"case store backend {backend!r} not in ('sqlite', 'postgresql')")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        # Each pooled connection would get its own empty in-memory database.
        raise ValueError(f"case store needs a SQLite file, got {url.render_as_string()!r}")
    return url


def create_store_engine(database_url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for the case store. Creates the SQLite file's folder (not the schema: see
    `service.store.migrate.upgrade_to_head`). Statement parameters are kept out of logs and error
    messages: they hold case text."""
    url = normalise_url(database_url)
    if url.get_backend_name() == "postgresql":
        return create_engine(url, echo=echo, hide_parameters=True, pool_pre_ping=True)
    assert url.database is not None  # checked by normalise_url
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, hide_parameters=True)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine (and pool), flagged so SQLite transactions take the write lock up front."""
    return engine.execution_options(**{_WRITE_OPTION: True})


def _configure_sqlite_connection(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # sqlite3 would open transactions lazily and on its own terms; `_begin_sqlite_transaction`
    # emits BEGIN itself instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer, nor it them
        cursor.execute("PRAGMA synchronous=FULL")  # in WAL, NORMAL may lose acknowledged commits
        cursor.execute("PRAGMA foreign_keys=ON")  # off by default: ON DELETE CASCADE needs it
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # wait for the lock, don't fail
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    # A deferred transaction that reads and then writes cannot wait for the lock (SQLite answers
    # "database is locked" at once when its snapshot is stale); BEGIN IMMEDIATE takes the lock
    # first, honouring busy_timeout, so concurrent writers queue up instead.
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
