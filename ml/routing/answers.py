"""The answer book: which doctors answered each stored case, kept in memory beside the index."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence


class AnswerBook:
    """Who answered each case, in memory: a routing call asks about 20 neighbours at once."""

    def __init__(self) -> None:
        self._by_case: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()

    def add(self, case_id: str, doctor_id: str) -> None:
        with self._lock:
            if doctor_id not in self._by_case[case_id]:
                self._by_case[case_id].append(doctor_id)

    def forget(self, case_id: str) -> None:
        with self._lock:
            self._by_case.pop(case_id, None)

    def answerers_of(self, case_ids: Sequence[str]) -> Mapping[str, Sequence[str]]:
        with self._lock:
            return {case_id: list(self._by_case.get(case_id, ())) for case_id in case_ids}
