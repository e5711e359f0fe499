"""The case store's tables (SQLAlchemy 2 typed ORM), portable across SQLite and PostgreSQL.

The schema is created by the Alembic migrations in `migrations/`, never by `create_all`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends.

    PostgreSQL keeps `timestamptz`; SQLite has no zones, so values are stored as naive UTC (a fixed
    width text that also sorts chronologically) and given their zone back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class CaseRow(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String, primary_key=True)  # client-given
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)  # de-identified by the caller
    language: Mapped[str] = mapped_column(String)
    country: Mapped[str] = mapped_column(String)
    author_id: Mapped[str] = mapped_column(String)
    patient_age: Mapped[float | None] = mapped_column(Float)
    patient_sex: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    content_hash: Mapped[str] = mapped_column(String(64))
    # Change sequence number: unique across cases and erasures, taken from `change_counter`.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)


class ResolutionRow(Base):
    __tablename__ = "resolutions"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    diagnosis: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    specialties: Mapped[list[str]] = mapped_column(JSON)
    resolved_at: Mapped[datetime]


class AnswerRow(Base):
    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_created_at_id", "created_at", "id"),)  # keyset paging in time order

    id: Mapped[str] = mapped_column(String, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # No foreign key: doctors are synced on their own schedule, answers must not wait for them.
    doctor_id: Mapped[str] = mapped_column(String, index=True)
    created_at: Mapped[datetime]
    accepted: Mapped[bool]
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)  # the change feed's number (as for cases)


class FeedbackRow(Base):
    """A doctor's verdict on one suggestion made for a case: a similar case or a doctor."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_created_at_id", "created_at", "id"),  # keyset paging in time order
        CheckConstraint("(similar_case_id IS NULL) <> (doctor_id IS NULL)", name="one_target"),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    # Erasing a case also erases every verdict that names it as someone else's similar case.
    similar_case_id: Mapped[str | None] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    # No foreign key, as for answers: the store checks the doctor exists when the verdict is given.
    doctor_id: Mapped[str | None] = mapped_column(String)
    useful: Mapped[bool]
    by: Mapped[str | None] = mapped_column(String)  # the doctor who gave the verdict
    created_at: Mapped[datetime]


class DoctorRow(Base):
    __tablename__ = "doctors"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    specialties: Mapped[list[str]] = mapped_column(JSON)
    interests: Mapped[list[str]] = mapped_column(JSON)
    languages: Mapped[list[str]] = mapped_column(JSON)
    country: Mapped[str] = mapped_column(String)
    timezone: Mapped[str] = mapped_column(String)
    available: Mapped[bool]
    max_open_cases: Mapped[int | None] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)  # the change feed's number (as for cases)


class ErasureRow(Base):
    __tablename__ = "erasures"

    # Ids only, never content. A case deleted, posted again and deleted again has two rows.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    case_id: Mapped[str] = mapped_column(String, index=True)
    erased_at: Mapped[datetime]


class RoutingDecisionRow(Base):
    __tablename__ = "routing_decisions"

    request_id: Mapped[str] = mapped_column(String, primary_key=True)
    # No foreign key: a request may be routed before (or without) its case being stored.
    case_id: Mapped[str | None] = mapped_column(String, index=True)
    model_version: Mapped[str] = mapped_column(String)
    specialties: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{"code", "probability"}]
    doctor_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class ChangeCounter(Base):
    """One row holding the last seq handed out.

    Writers lock it for their whole transaction, so seqs are committed in the order they are
    handed out on every backend: a reader that sees seq n committed has also seen every seq < n.
    (A PostgreSQL sequence would not give this: a lower value can commit after a higher one.)
    """

    __tablename__ = "change_counter"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)
