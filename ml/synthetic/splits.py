"""The synthetic world's time split, shared by every model and benchmark trained on it.

Cases posted before September are `train`, September-October `dev` (for choosing settings),
November-December `test` (reported once). Splitting by time, not at random, is what a router
deployed on past data faces: it never sees the future. Months are in UTC; the last evening of
the year in the Americas falls on 1 January UTC and still counts as `test`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DEV_START = datetime(2025, 9, 1, tzinfo=UTC)
TEST_START = datetime(2025, 11, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
PERIODS = {
    "train": (datetime(2000, 1, 1, tzinfo=UTC), DEV_START),
    "dev": (DEV_START, TEST_START),
    "test": (TEST_START, END),
}
_SPILL = timedelta(days=1)  # local 31 December, already 1 January in UTC


def split_of(created_at: datetime) -> str:
    """Which split a case posted at `created_at` belongs to."""
    for name, (start, end) in PERIODS.items():
        if start <= created_at < end:
            return name
    if END <= created_at < END + _SPILL:
        return "test"
    raise ValueError(f"{created_at.isoformat()} is outside the synthetic world's year")
