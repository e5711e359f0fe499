"""The case store: the source of truth (SQLite by default, PostgreSQL by URL) the index is derived from.

upgrade_to_head(settings.database_url)          # at start-up: schema via Alembic
store = CaseStore.from_url(settings.database_url)
store.put_case(NewCase(...))                    # -> Outcome
for batch in store.iter_changes(index_watermark): ...
"""

from service.store.database import create_store_engine
from service.store.errors import (
    AnswerConflictError,
    CaseConflictError,
    RoutingConflictError,
    StoreError,
    StoreUnavailableError,
    UnknownCaseError,
    UnknownDoctorError,
    UnknownRoutingError,
)
from service.store.migrate import current_revision, head_revision, upgrade_to_head
from service.store.records import (
    Answer,
    AnswerActivity,
    ChangeBatch,
    Doctor,
    Erasure,
    NewCase,
    Outcome,
    RankedSpecialty,
    Resolution,
    RoutingDecision,
    StoredCase,
)
from service.store.repository import CaseStore

__all__ = [
    "Answer",
    "AnswerActivity",
    "AnswerConflictError",
    "CaseConflictError",
    "CaseStore",
    "ChangeBatch",
    "Doctor",
    "Erasure",
    "NewCase",
    "Outcome",
    "RankedSpecialty",
    "Resolution",
    "RoutingConflictError",
    "RoutingDecision",
    "StoreError",
    "StoreUnavailableError",
    "StoredCase",
    "UnknownCaseError",
    "UnknownDoctorError",
    "UnknownRoutingError",
    "create_store_engine",
    "current_revision",
    "head_revision",
    "upgrade_to_head",
]
