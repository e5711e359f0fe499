"""The answer book: which doctors answered each stored case, kept in memory beside the index."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


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

    def __len__(self) -> int:
        """Answers held (one per case and doctor)."""
        with self._lock:
            return sum(len(doctors) for doctors in self._by_case.values())

    def save(self, path: Path, *, watermark: int) -> None:
        """Write every (case, doctor, accepted) to one .npz file, in answer order within a case,
        with the store position it holds everything up to."""
        with self._lock:
            cases = [(case_id, doctors) for case_id, doctors in self._by_case.items() if doctors]
            answerers = [d for _, doctors in cases for d in doctors]
            # each doctor id once, and a number per answer: a doctor answers many cases
            doctor_ids, answerer = np.unique(np.array(answerers, dtype=str), return_inverse=True)
            arrays = {
                "case_ids": np.array([case_id for case_id, _ in cases], dtype=str),
                "runs": np.array([len(doctors) for _, doctors in cases], dtype=np.int64),
                "doctor_ids": doctor_ids,
                "answerer": answerer.astype(np.int32),
                "accepted": np.array([a for _, doctors in cases for a in doctors.values()], dtype=bool),
                "watermark": np.array(watermark, dtype=np.int64),
            }
        with path.open("wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]  # the stubs read a key as allow_pickle

    @classmethod
    def load(cls, path: Path) -> tuple[AnswerBook, int]:
        """The book saved in `path`, and its watermark."""
        book = cls()
        with np.load(path, allow_pickle=False) as saved:
            known = saved["doctor_ids"].tolist()
            doctor_ids = [known[i] for i in saved["answerer"].tolist()]
            accepted = saved["accepted"].tolist()
            ends = np.cumsum(saved["runs"]).tolist()
            start = 0
            for case_id, end in zip(saved["case_ids"].tolist(), ends, strict=True):
                book._by_case[case_id] = dict(zip(doctor_ids[start:end], accepted[start:end], strict=True))
                start = end
            watermark = int(saved["watermark"])
        return book, watermark
