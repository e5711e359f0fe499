"""Answers and doctors join the change feed: each change takes a seq from `change_counter`.

Every piece of state a route reads (the index, doctor activity, the answer book, availability)
can then follow one feed, so a write taken by one worker reaches every worker. Rows stored before
this revision get seqs after the current head, in a stable order (doctors by id, answers by time),
so a follower that starts from an older watermark sees each of them exactly once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = {"doctors": "id", "answers": "created_at, id"}  # table -> order of the backfill


def upgrade() -> None:
    connection = op.get_bind()
    head = connection.execute(sa.text("SELECT value FROM change_counter WHERE id = 1")).scalar_one()
    for table, order in _TABLES.items():
        op.add_column(table, sa.Column("seq", sa.BigInteger(), nullable=True))
        ids = connection.execute(sa.text(f"SELECT id FROM {table} ORDER BY {order}")).scalars().all()
        if ids:
            connection.execute(
                sa.text(f"UPDATE {table} SET seq = :seq WHERE id = :id"),
                [{"seq": head + offset, "id": row_id} for offset, row_id in enumerate(ids, start=1)],
            )
            head += len(ids)
        with op.batch_alter_table(table) as batch:  # SQLite cannot alter a table in place
            batch.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
            batch.create_unique_constraint(op.f(f"uq_{table}_seq"), ["seq"])
    connection.execute(sa.text("UPDATE change_counter SET value = :head WHERE id = 1"), {"head": head})


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"uq_{table}_seq"), type_="unique")
            batch.drop_column("seq")
