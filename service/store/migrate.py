"""Schema migrations of the case store, run programmatically with Alembic.

To author a new revision after changing `models.py` (then review the generated file):

    from alembic import command
    from service.store.migrate import alembic_config
    command.revision(alembic_config("sqlite:///var/casematch.db"), "what changed", autogenerate=True)
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from service.store.database import create_store_engine, writer

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
_PG_MIGRATION_LOCK = 0x63_61_73_65  # pg_advisory_xact_lock key: "case"


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config pointing at this package's migrations, independent of the working folder."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        # The config is an INI parser: a literal % (URL-encoded characters) must be doubled.
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations in {MIGRATIONS_DIR}"
    return head


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None before the first migration."""
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade_to_head(database_url: str) -> str:
    """Create or upgrade the schema to the newest revision; a no-op when already there.

    Safe to call from several processes at once: they take turns (an advisory lock on PostgreSQL,
    the write lock on SQLite), and the later ones find the schema at head.
    """
    engine = create_store_engine(database_url)
    try:
        with writer(engine).begin() as connection:
            _lock_migrations(connection)
            config = alembic_config()
            config.attributes["connection"] = connection  # env.py migrates on it
            command.upgrade(config, "head")
            revision = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    assert revision is not None
    logger.info("case store schema at revision %s", revision)
    return revision


def _lock_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    # SQLite: the writer's BEGIN IMMEDIATE already holds the database's only write lock.
