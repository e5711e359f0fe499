"""What the network knows about each doctor at a moment, and the features of a (case, doctor) pair.

`DoctorActivity` is updated event by event (an answer, an accepted answer) so that the features
of a case posted at time t use only what happened before t: the same code replays the synthetic
interaction log for training and follows the live store when serving.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from ml.models.doctor_ranker import FEATURES
from ml.taxonomy import load_taxonomy

NEIGHBOURS = 20  # nearest resolved cases whose answerers become candidates

_WINDOWS = {
    "load_24h": timedelta(hours=24),
    "answers_7d": timedelta(days=7),
    "answers_30d": timedelta(days=30),
}


@dataclass(frozen=True, slots=True)
class DoctorProfile:
    doctor_id: str
    specialties: tuple[str, ...]
    interests: tuple[str, ...]
    languages: tuple[str, ...]
    timezone: str


@dataclass(frozen=True, slots=True)
class CaseContext:
    """What the ranker knows of a new case."""

    vector: npt.NDArray[np.float32]  # unit length
    language: str
    posted_at: datetime
    specialty_probabilities: npt.NDArray[np.float64]  # (63,), taxonomy order
    similar_case_answerers: Mapping[str, int]  # doctor id -> nearest resolved cases they answered
    author_id: str | None = None


class DoctorActivity:
    """Per-doctor counters, windows and answer-history profiles, as arrays indexed by doctor."""

    def __init__(self, doctors: Sequence[DoctorProfile], dim: int) -> None:
        self.doctors = list(doctors)
        self.slot = {d.doctor_id: i for i, d in enumerate(self.doctors)}
        if len(self.slot) != len(self.doctors):
            raise ValueError("doctor ids must be unique")
        self._index_profiles()
        n = len(self.doctors)
        self.answers = np.zeros(n)
        self.accepted = np.zeros(n)
        self.log_response_sum = np.zeros(n)
        self.last_answer_hours = np.full(n, np.nan)  # hours since the epoch
        self.profile_sum = np.zeros((n, dim), dtype=np.float32)
        self.window_counts = {name: np.zeros(n) for name in _WINDOWS}
        self._window_events: dict[str, deque[tuple[datetime, int]]] = {name: deque() for name in _WINDOWS}

    def __len__(self) -> int:
        return len(self.doctors)

    def upsert_doctor(self, profile: DoctorProfile) -> None:
        """Add a doctor (with no history yet) or replace one's profile, keeping their history."""
        if profile.doctor_id in self.slot:
            self.doctors[self.slot[profile.doctor_id]] = profile
        else:
            self.slot[profile.doctor_id] = len(self.doctors)
            self.doctors.append(profile)
            for name in ("answers", "accepted", "log_response_sum"):
                setattr(self, name, np.append(getattr(self, name), 0.0))
            self.last_answer_hours = np.append(self.last_answer_hours, np.nan)
            self.profile_sum = np.vstack(
                [self.profile_sum, np.zeros((1, self.profile_sum.shape[1]), np.float32)]
            )
            self.window_counts = {name: np.append(counts, 0.0) for name, counts in self.window_counts.items()}
        self._index_profiles()

    def _index_profiles(self) -> None:
        """Masks of specialties, interests, languages and time zones, from the profiles."""
        codes = load_taxonomy().codes
        column = {code: i for i, code in enumerate(codes)}
        n = len(self.doctors)
        self.specialty_mask = np.zeros((n, len(codes)), dtype=bool)
        self.interest_mask = np.zeros((n, len(codes)), dtype=bool)
        self._reads: dict[str, npt.NDArray[np.bool_]] = {}
        for i, doctor in enumerate(self.doctors):
            self.specialty_mask[i, [column[c] for c in doctor.specialties]] = True
            self.interest_mask[i, [column[c] for c in doctor.interests if c in column]] = True
            for language in doctor.languages:
                self._reads.setdefault(language, np.zeros(n, dtype=bool))[i] = True
        zones = sorted({d.timezone for d in self.doctors})
        self._zones = [ZoneInfo(z) for z in zones]
        self._zone_of = np.array([zones.index(d.timezone) for d in self.doctors], dtype=np.intp)

    def record_answer(
        self,
        doctor_id: str,
        *,
        case_vector: npt.NDArray[np.float32],
        posted_at: datetime,
        answered_at: datetime,
    ) -> None:
        i = self.slot[doctor_id]
        self.answers[i] += 1
        self.log_response_sum[i] += np.log(max((answered_at - posted_at).total_seconds() / 3600, 1 / 60))
        self.last_answer_hours[i] = answered_at.timestamp() / 3600
        self.profile_sum[i] += case_vector
        for name in _WINDOWS:
            self.window_counts[name][i] += 1
            self._window_events[name].append((answered_at, i))

    def record_acceptance(self, doctor_id: str) -> None:
        self.accepted[self.slot[doctor_id]] += 1

    def advance(self, now: datetime) -> None:
        """Expire window counts older than their window (events must be recorded in time order)."""
        for name, width in _WINDOWS.items():
            events = self._window_events[name]
            while events and events[0][0] <= now - width:
                _, i = events.popleft()
                self.window_counts[name][i] -= 1

    def candidates(
        self, case: CaseContext, *, top_specialties: int = 3, most_active: int = 0
    ) -> npt.NDArray[np.intp]:
        """Doctors of (or following) the case's likeliest specialties, those who answered similar
        cases, and the `most_active` doctors of the last 30 days."""
        top = np.argsort(-case.specialty_probabilities, kind="stable")[:top_specialties]
        chosen: npt.NDArray[np.bool_] = np.asarray(
            (self.specialty_mask[:, top] | self.interest_mask[:, top]).any(axis=1)
        )
        if most_active:
            chosen[np.argsort(-self.window_counts["answers_30d"], kind="stable")[:most_active]] = True
        for doctor_id in case.similar_case_answerers:
            if doctor_id in self.slot:
                chosen[self.slot[doctor_id]] = True
        if case.author_id in self.slot:
            chosen[self.slot[case.author_id]] = False  # nobody answers their own case
        return np.flatnonzero(chosen)

    def features(self, case: CaseContext, doctors: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
        """(len(doctors), len(FEATURES)) as of the case's posting time (call `advance` first)."""
        p = case.specialty_probabilities
        top = int(np.argmax(p))
        answers = self.answers[doctors]
        seen = answers > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            centroid = self.profile_sum[doctors] / np.maximum(answers, 1)[:, None]
            norms = np.linalg.norm(centroid, axis=1)
            similarity = np.where(seen, centroid @ case.vector / np.maximum(norms, 1e-9), np.nan)
            response = np.where(seen, self.log_response_sum[doctors] / np.maximum(answers, 1), np.nan)
            accept_rate = np.where(seen, self.accepted[doctors] / np.maximum(answers, 1), np.nan)
        now_hours = case.posted_at.timestamp() / 3600
        columns = {
            "specialty_fit": self.specialty_mask[doctors] @ p,
            "interest_fit": self.interest_mask[doctors] @ p,
            "has_top_specialty": self.specialty_mask[doctors, top].astype(np.float64),
            "reads_language": self.reads(case.language)[doctors].astype(np.float64),
            "profile_similarity": similarity,
            "similar_cases_answered": self._per_doctor(case.similar_case_answerers)[doctors],
            "answers_total": answers,
            "answers_7d": self.window_counts["answers_7d"][doctors],
            "answers_30d": self.window_counts["answers_30d"][doctors],
            "load_24h": self.window_counts["load_24h"][doctors],
            "local_hour": self.local_hours(case.posted_at)[doctors],
            "log_response_hours": response,
            "accept_rate": accept_rate,
            "days_since_last_answer": (now_hours - self.last_answer_hours[doctors]) / 24,
        }
        return np.column_stack([columns[name] for name in FEATURES])

    def reads(self, language: str) -> npt.NDArray[np.bool_]:
        return self._reads.get(language, np.zeros(len(self.doctors), dtype=bool))

    def _per_doctor(self, counts: Mapping[str, int]) -> npt.NDArray[np.float64]:
        out = np.zeros(len(self.doctors))
        for doctor_id, count in counts.items():
            if doctor_id in self.slot:
                out[self.slot[doctor_id]] = count
        return out

    def local_hours(self, when: datetime) -> npt.NDArray[np.float64]:
        """Each doctor's local clock hour (0-24, fractional) at `when`."""
        local = [when.astimezone(zone) for zone in self._zones]
        by_zone = np.array([t.hour + t.minute / 60 for t in local])
        return by_zone[self._zone_of]
