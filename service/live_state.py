"""The routing state beside the index that follows the store's change feed: doctor profiles and
activity (inside the routing engine), who answered each case, and who is unavailable.

The activity and the answer book are saved beside the index snapshot at its watermark, so a worker
starts from them instead of replaying every answer in the store (minutes at millions of answers).
Profiles and availability always come from the store: they are few and must be current.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ml.routing.answers import AnswerBook
from ml.routing.doctors import DoctorActivity, DoctorProfile
from ml.routing.engine import RoutingEngine
from service.store.records import AnswerActivity, Doctor

logger = logging.getLogger("casematch.live_state")
ACTIVITY_FILE = "doctor_activity.npz"
ANSWERS_FILE = "answer_book.npz"


def doctor_profile(doctor: Doctor) -> DoctorProfile:
    return DoctorProfile(
        doctor.doctor_id, doctor.specialties, doctor.interests, doctor.languages, doctor.timezone
    )


class LiveRoutingState:
    def __init__(self, engine: RoutingEngine, answers: AnswerBook, unavailable: set[str]) -> None:
        self.engine = engine
        self.answers = answers
        # Replaced, never changed in place: a route reads it without a lock or a copy.
        self._unavailable = frozenset(unavailable)

    def unavailable(self) -> frozenset[str]:
        """Doctors who asked not to be routed to, as of the last change applied."""
        return self._unavailable

    def apply_doctors(self, doctors: Sequence[Doctor]) -> None:
        for doctor in doctors:
            self.engine.upsert_doctor(doctor_profile(doctor))
        now_available = {d.doctor_id for d in doctors if d.available}
        now_unavailable = {d.doctor_id for d in doctors if not d.available}
        if now_unavailable - self._unavailable or now_available & self._unavailable:
            self._unavailable = (self._unavailable - now_available) | now_unavailable

    def apply_answers(
        self, answers: Sequence[AnswerActivity], vectors: dict[str, npt.NDArray[np.float32]]
    ) -> None:
        """Count each answer once and each acceptance once, however often the feed repeats them.
        `vectors` holds the answered cases' vectors (from the index: nothing is encoded again)."""
        for entry in answers:
            answer = entry.answer
            vector = vectors.get(answer.case_id)
            if vector is None:
                continue  # the case is not indexed (erased since): its answers are gone with it
            recorded = self.answers.add(answer.case_id, answer.doctor_id, accepted=answer.accepted)
            if recorded.new:
                self.engine.record_answer(
                    answer.doctor_id,
                    case_vector=vector,
                    posted_at=entry.case_posted_at,
                    answered_at=answer.created_at,
                )
            if recorded.newly_accepted:
                self.engine.record_acceptance(answer.doctor_id)

    def forget_cases(self, case_ids: Sequence[str]) -> None:
        for case_id in case_ids:
            self.answers.forget(case_id)

    def save(self, folder: Path, *, watermark: int) -> None:
        """Snapshot the activity and the answer book as of `watermark` (the caller holds the
        changes back meanwhile). Each file is written aside, then moved over the old one."""
        _replace(folder / ACTIVITY_FILE, lambda path: self.engine.save_activity(path, watermark=watermark))
        _replace(folder / ANSWERS_FILE, lambda path: self.answers.save(path, watermark=watermark))


@dataclass(frozen=True)
class SavedState:
    activity: DoctorActivity
    answers: AnswerBook
    watermark: int


def load_saved_state(folder: Path, profiles: Sequence[DoctorProfile], dim: int) -> SavedState | None:
    """The activity and answer book saved in `folder` for today's `profiles`, or None when there
    is none usable (missing, damaged, or the two files from different saves)."""
    if not (folder / ACTIVITY_FILE).exists() or not (folder / ANSWERS_FILE).exists():
        return None
    try:
        activity, activity_at = DoctorActivity.load(folder / ACTIVITY_FILE, profiles, dim)
        answers, answers_at = AnswerBook.load(folder / ANSWERS_FILE)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        logger.warning("routing state snapshot not used (%s); replaying the answers", exc)
        return None
    if activity_at != answers_at:
        logger.warning("routing state snapshot files disagree (%d, %d); replaying", activity_at, answers_at)
        return None
    return SavedState(activity, answers, activity_at)


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    aside = path.with_name(f".{path.name}.tmp")
    write(aside)
    os.replace(aside, path)
