"""Train / dev / test by posting time: a model deployed on the past never sees the future."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True, slots=True)
class TimeSplit:
    """Cases posted before `dev_start` are train, before `test_start` dev, the rest test."""

    dev_start: datetime
    test_start: datetime

    def __post_init__(self) -> None:
        if self.test_start < self.dev_start:
            raise ValueError(f"test starts ({self.test_start}) before dev ({self.dev_start})")

    def of(self, posted_at: datetime) -> str:
        if posted_at < self.dev_start:
            return "train"
        return "dev" if posted_at < self.test_start else "test"

    @classmethod
    def by_share(cls, posted: Sequence[datetime], *, dev: float = 0.1, test: float = 0.1) -> TimeSplit:
        """The oldest (1 - dev - test) of the cases train, the next `dev` dev, the newest `test` test."""
        if not (0 <= dev < 1 and 0 <= test < 1 and dev + test < 1):
            raise ValueError(f"dev ({dev}) and test ({test}) shares must be in [0, 1) and sum below 1")
        if not posted:
            raise ValueError("no cases to split")
        ordered = sorted(posted)
        past_the_end = ordered[-1] + timedelta(microseconds=1)

        def first_of(position: int) -> datetime:  # a split starts at its oldest case
            return ordered[position] if position < len(ordered) else past_the_end

        return cls(
            first_of(round(len(ordered) * (1 - dev - test))), first_of(round(len(ordered) * (1 - test)))
        )

    def describe(self) -> str:
        return f"train < {self.dev_start.isoformat()} <= dev < {self.test_start.isoformat()} <= test"
