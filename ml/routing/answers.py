"""The answer book: which doctors answered each stored case, kept in memory beside the index."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording an answer changed: a new answer, and/or a newly accepted one."""

    new: bool
    newly_accepted: bool


class AnswerBook:
    """Who answered each case (and whether it was accepted), in memory: a routing call asks about
    20 neighbours at once."""

    def __init__(self) -> None:
        self._by_case: dict[str, dict[str, bool]] = {}  # case -> doctor -> accepted, in answer order
        self._lock = threading.Lock()

    def add(self, case_id: str, doctor_id: str, *, accepted: bool = False) -> Recorded:
        """Record an answer, or its acceptance, once: the same answer seen again changes nothing."""
        with self._lock:
            doctors = self._by_case.setdefault(case_id, {})
            before = doctors.get(doctor_id)
            doctors[doctor_id] = accepted or bool(before)  # an acceptance is never taken back
            return Recorded(new=before is None, newly_accepted=accepted and not before)

    def forget(self, case_id: str) -> None:
        with self._lock:
            self._by_case.pop(case_id, None)

    def answerers_of(self, case_ids: Sequence[str]) -> Mapping[str, Sequence[str]]:
        with self._lock:
            return {case_id: list(self._by_case.get(case_id, ())) for case_id in case_ids}
