"""Alembic environment of the case store.

`service.store.migrate.upgrade_to_head` hands in an open connection (in `config.attributes`);
otherwise the URL in the config is used. No logging is configured here: that is the caller's job.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from service.store.database import create_store_engine
from service.store.models import Base

config = context.config
target_metadata = Base.metadata


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():  # `--sql`: print the DDL for review instead of running it
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    if not url:
        raise RuntimeError(
            "no connection and no sqlalchemy.url: use service.store.migrate.alembic_config(url)"
        )
    engine = create_store_engine(url)
    try:
        with engine.begin() as own_connection:
            _migrate(own_connection)
    finally:
        engine.dispose()


_run()
