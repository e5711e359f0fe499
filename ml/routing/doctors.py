"""What the network knows about each doctor at a moment, and the features of a (case, doctor) pair.

`DoctorActivity` is updated event by event (an answer, an accepted answer) so that the features
of a case posted at time t use only what happened before t: the same code replays the synthetic
interaction log for training and follows the live store when serving.

It is sized for a network of hundreds of thousands of doctors on one machine:
- every per-doctor array has spare capacity and grows geometrically, so adding doctors one at a
  time costs amortised O(1) each (no copy of every array per newcomer);
- a routing call makes one vectorised pass over the doctors (which of them cover the case's likeliest
  specialties) and otherwise works on at most `max_candidates` of them;
- answers in the activity windows are one log of (time, doctor) in two flat arrays, expired by
  binary search, not a Python object per answer and window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from ml.models.doctor_ranker import FEATURES
from ml.taxonomy import load_taxonomy

NEIGHBOURS = 20  # nearest resolved cases whose answerers become candidates
# Doctors one routing call scores at most: the ranker builds features for every candidate, and a
# likely specialty of a large network holds tens of thousands of doctors. Similar cases'
# answerers always stay; the rest are the best by `DoctorActivity.prior` (bench/scale.md).
MAX_CANDIDATES = 2_000
GROWTH = 2  # capacity factor when a new doctor does not fit (amortised O(1) per doctor added)
HEADROOM = 8  # spare capacity at construction: 1/HEADROOM of the doctors given

_WINDOWS = {
    "load_24h": timedelta(hours=24),
    "answers_7d": timedelta(days=7),
    "answers_30d": timedelta(days=30),
}
_MICROSECOND = timedelta(microseconds=1)
_WINDOW_MICROS = {name: width // _MICROSECOND for name, width in _WINDOWS.items()}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COUNTERS = ("answers", "accepted", "log_response_sum", "last_answer_hours", *_WINDOWS)
_T = TypeVar("_T")


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
    """Per-doctor counters, windows and answer-history profiles, as arrays indexed by doctor slot.

    The public arrays (`answers`, `profile_sum`, `specialty_mask`, ...) are views of the first
    `len(self)` rows of buffers with room for `capacity` doctors.
    """

    def __init__(self, doctors: Sequence[DoctorProfile], dim: int) -> None:
        codes = load_taxonomy().codes
        self._column = {code: i for i, code in enumerate(codes)}
        self.doctors: list[DoctorProfile] = []
        self.slot: dict[str, int] = {}
        self._shared: dict[object, object] = {}  # one object per distinct tuple or zone name
        # Room for an eighth more doctors: growing copies every array (seconds at 500k doctors, under
        # the engine's lock), and a start-up builds the activity anew, so this much headroom means a
        # copy only after 60,000 doctors joined at 500k, between two restarts.
        self._capacity = max(len(doctors) + len(doctors) // HEADROOM, 16)
        n = self._capacity
        # np.zeros leaves untouched pages unmapped: spare capacity costs address space, not memory
        self._counters = {name: np.zeros(n) for name in _COUNTERS}
        self._profile_sum = np.zeros((n, dim), dtype=np.float32)
        # specialties and interests by doctor (rows, for the features of a few candidates) and by
        # specialty (columns, for one contiguous pass over every doctor per routing call)
        self._specialty_rows = np.zeros((n, len(codes)), dtype=bool)
        self._interest_rows = np.zeros((n, len(codes)), dtype=bool)
        self._specialty_cols = np.zeros((len(codes), n), dtype=bool)
        self._interest_cols = np.zeros((len(codes), n), dtype=bool)
        self._reads: dict[str, npt.NDArray[np.bool_]] = {}
        self._zone_names: dict[str, int] = {}
        self._zones: list[ZoneInfo] = []
        self._zone_of = np.zeros(n, dtype=np.int32)
        # the answers still inside a window: time (microseconds since the epoch, running maximum,
        # so that one binary search finds what expired) and doctor slot, in the order recorded
        self._event_at = np.zeros(1024, dtype=np.int64)
        self._event_slot = np.zeros(1024, dtype=np.intp)
        self._event_end = 0
        self._window_start = dict.fromkeys(_WINDOWS, 0)
        self._latest_event = np.iinfo(np.int64).min
        self._add_all(doctors)

    def __len__(self) -> int:
        return len(self.doctors)

    @property
    def capacity(self) -> int:
        """Doctors the arrays have room for before they grow."""
        return self._capacity

    # --- the arrays the features read, one row per doctor --------------------------------------

    @property
    def answers(self) -> npt.NDArray[np.float64]:
        return self._counters["answers"][: len(self.doctors)]

    @property
    def accepted(self) -> npt.NDArray[np.float64]:
        return self._counters["accepted"][: len(self.doctors)]

    @property
    def log_response_sum(self) -> npt.NDArray[np.float64]:
        return self._counters["log_response_sum"][: len(self.doctors)]

    @property
    def last_answer_hours(self) -> npt.NDArray[np.float64]:
        """Hours since the epoch of each doctor's last answer (NaN: none yet)."""
        return self._counters["last_answer_hours"][: len(self.doctors)]

    @property
    def profile_sum(self) -> npt.NDArray[np.float32]:
        return self._profile_sum[: len(self.doctors)]

    @property
    def window_counts(self) -> dict[str, npt.NDArray[np.float64]]:
        return {name: self._counters[name][: len(self.doctors)] for name in _WINDOWS}

    @property
    def specialty_mask(self) -> npt.NDArray[np.bool_]:
        """(doctors, 63): which specialties each doctor practises."""
        return self._specialty_rows[: len(self.doctors)]

    @property
    def interest_mask(self) -> npt.NDArray[np.bool_]:
        return self._interest_rows[: len(self.doctors)]

    def nbytes(self) -> int:
        """Bytes of the arrays (at capacity, spare rows included; Python objects not counted)."""
        arrays: list[npt.NDArray[Any]] = [
            *self._counters.values(),
            self._profile_sum,
            self._specialty_rows,
            self._interest_rows,
            self._specialty_cols,
            self._interest_cols,
            self._zone_of,
            self._event_at,
            self._event_slot,
            *self._reads.values(),
        ]
        return sum(a.nbytes for a in arrays)

    # --- snapshot --------------------------------------------------------------------------

    def save(self, path: Path, *, watermark: int) -> None:
        """Write every doctor's history (counters, profile sums, the window log) to one .npz file,
        with the store position it holds everything up to: reading it back is much faster than
        replaying every answer (the profiles themselves come from the store)."""
        n = len(self.doctors)
        oldest = min(self._window_start.values())
        arrays: dict[str, npt.NDArray[Any]] = {
            "doctor_ids": np.array([d.doctor_id for d in self.doctors], dtype=str),
            "profile_sum": self._profile_sum[:n],
            "event_at": self._event_at[oldest : self._event_end],
            "event_slot": self._event_slot[oldest : self._event_end],
            "window_start": np.array([self._window_start[name] - oldest for name in _WINDOWS]),
            "scalars": np.array([self._latest_event, watermark], dtype=np.int64),
        }
        arrays |= {f"counter_{name}": self._counters[name][:n] for name in _COUNTERS}
        with path.open("wb") as out:
            np.savez(out, **arrays)  # type: ignore[arg-type]  # the stubs read a key as allow_pickle

    @classmethod
    def load(cls, path: Path, doctors: Sequence[DoctorProfile], dim: int) -> tuple[DoctorActivity, int]:
        """The activity saved in `path` for `doctors` (current profiles; a doctor the file does not
        know starts with no history, one `doctors` lacks is dropped), and its watermark."""
        activity = cls(doctors, dim)
        with np.load(path, allow_pickle=False) as saved:
            if saved["profile_sum"].shape[1:] != (dim,):
                raise ValueError(f"{path} holds {saved['profile_sum'].shape[1:]} profiles, expected ({dim},)")
            slot_of = activity.slot
            slots = np.array([slot_of.get(str(d), -1) for d in saved["doctor_ids"]], dtype=np.intp)
            known = slots >= 0
            for name in _COUNTERS:
                activity._counters[name][slots[known]] = saved[f"counter_{name}"][known]
            activity._profile_sum[slots[known]] = saved["profile_sum"][known]
            events = slots[saved["event_slot"]]
            kept = events >= 0  # answers of doctors gone since leave the windows with them
            starts = saved["window_start"]
            activity._event_at = saved["event_at"][kept].copy()
            activity._event_slot = events[kept].copy()
            activity._event_end = int(kept.sum())
            activity._window_start = {
                name: int(kept[:start].sum()) for name, start in zip(_WINDOWS, starts, strict=True)
            }
            activity._latest_event, watermark = (int(x) for x in saved["scalars"])
        if not len(activity._event_at):
            activity._event_at = np.zeros(1024, dtype=np.int64)
            activity._event_slot = np.zeros(1024, dtype=np.intp)
        return activity, watermark

    # --- doctors joining and changing profile --------------------------------------------------

    def upsert_doctor(self, profile: DoctorProfile) -> None:
        """Add a doctor (with no history yet) or replace one's profile, keeping their history."""
        i = self.slot.get(profile.doctor_id)
        if i is None:
            self._add(profile)
        else:
            self._set_profile(i, profile)

    def _add(self, profile: DoctorProfile) -> None:
        i = len(self.doctors)
        if i == self._capacity:
            self._grow(max(i + 1, GROWTH * self._capacity))
        self.slot[profile.doctor_id] = i
        self.doctors.append(profile)
        self._counters["last_answer_hours"][i] = np.nan
        self._set_profile(i, profile)

    def _add_all(self, doctors: Sequence[DoctorProfile]) -> None:
        """`_add` for many doctors at once (start-up builds the activity of every doctor): the
        masks are written in one assignment each, not a few per doctor."""
        start = len(self.doctors)
        if start + len(doctors) > self._capacity:
            self._grow(max(start + len(doctors), GROWTH * self._capacity))
        cells: dict[str, tuple[list[int], list[int]]] = {"specialty": ([], []), "interest": ([], [])}
        reads: dict[str, list[int]] = {}
        zones = []
        for i, given in enumerate(doctors, start=start):
            if given.doctor_id in self.slot:
                raise ValueError("doctor ids must be unique")
            profile = self._shared_profile(given)
            self.slot[profile.doctor_id] = i
            self.doctors.append(profile)
            for kind, codes in (("specialty", profile.specialties), ("interest", profile.interests)):
                columns = [self._column[c] for c in codes if kind == "specialty" or c in self._column]
                cells[kind][0].extend([i] * len(columns))
                cells[kind][1].extend(columns)
            for language in profile.languages:
                reads.setdefault(language, []).append(i)
            zones.append(self._zone(profile.timezone))
        end = len(self.doctors)
        for rows, cols, (who, where) in (
            (self._specialty_rows, self._specialty_cols, cells["specialty"]),
            (self._interest_rows, self._interest_cols, cells["interest"]),
        ):
            rows[who, where] = True
            cols[where, who] = True
        for language, who in reads.items():
            if language not in self._reads:
                self._reads[language] = np.zeros(self._capacity, dtype=bool)
            self._reads[language][who] = True
        self._zone_of[start:end] = zones
        self._counters["last_answer_hours"][start:end] = np.nan

    def _grow(self, capacity: int) -> None:
        n = len(self.doctors)
        self._counters = {name: _resized(a, capacity, n) for name, a in self._counters.items()}
        self._profile_sum = _resized(self._profile_sum, capacity, n)
        self._specialty_rows = _resized(self._specialty_rows, capacity, n)
        self._interest_rows = _resized(self._interest_rows, capacity, n)
        self._specialty_cols = _resized_columns(self._specialty_cols, capacity, n)
        self._interest_cols = _resized_columns(self._interest_cols, capacity, n)
        self._zone_of = _resized(self._zone_of, capacity, n)
        self._reads = {language: _resized(a, capacity, n) for language, a in self._reads.items()}
        self._capacity = capacity

    def _set_profile(self, i: int, profile: DoctorProfile) -> None:
        """Write doctor i's profile into the masks (the doctor's history stays as it is)."""
        profile = self._shared_profile(profile)
        self.doctors[i] = profile
        specialties = [self._column[c] for c in profile.specialties]
        interests = [self._column[c] for c in profile.interests if c in self._column]
        for rows, cols, chosen in (
            (self._specialty_rows, self._specialty_cols, specialties),
            (self._interest_rows, self._interest_cols, interests),
        ):
            rows[i] = False
            cols[:, i] = False
            rows[i, chosen] = True
            cols[chosen, i] = True
        for reads in self._reads.values():
            reads[i] = False
        for language in profile.languages:
            if language not in self._reads:
                self._reads[language] = np.zeros(self._capacity, dtype=bool)
            self._reads[language][i] = True
        self._zone_of[i] = self._zone(profile.timezone)

    def _zone(self, name: str) -> int:
        if name not in self._zone_names:
            self._zone_names[name] = len(self._zones)
            self._zones.append(ZoneInfo(name))
        return self._zone_names[name]

    def _shared_profile(self, profile: DoctorProfile) -> DoctorProfile:
        return DoctorProfile(
            profile.doctor_id,
            self._one(profile.specialties),
            self._one(profile.interests),
            self._one(profile.languages),
            self._one(profile.timezone),
        )

    def _one(self, value: _T) -> _T:
        """The one shared copy of an equal tuple or string: half a million doctors share a few
        thousand specialty sets and a few dozen time zones."""
        shared = self._shared.setdefault(value, value)
        return shared  # type: ignore[return-value]  # equal to `value`, so of its type

    # --- events --------------------------------------------------------------------------------

    def record_answer(
        self,
        doctor_id: str,
        *,
        case_vector: npt.NDArray[np.float32],
        posted_at: datetime,
        answered_at: datetime,
    ) -> None:
        i = self.slot[doctor_id]
        counters = self._counters
        counters["answers"][i] += 1
        counters["log_response_sum"][i] += np.log(
            max((answered_at - posted_at).total_seconds() / 3600, 1 / 60)
        )
        counters["last_answer_hours"][i] = answered_at.timestamp() / 3600
        self._profile_sum[i] += case_vector
        for name in _WINDOWS:
            counters[name][i] += 1
        self._log_event(_micros(answered_at), i)

    def record_acceptance(self, doctor_id: str) -> None:
        self._counters["accepted"][self.slot[doctor_id]] += 1

    def _log_event(self, at: int, i: int) -> None:
        end = self._event_end
        if end == len(self._event_at):
            # Answers are recorded in time order and before the cases that read them are posted,
            # so what has expired by the latest answer has expired for every later case too:
            # expiring now keeps the log to about the last 30 days, however long a replay runs
            # without an `advance`.
            self._expire(self._latest_event)
            self._compact_events()
            end = self._event_end
            if end == len(self._event_at):
                self._event_at = _resized(self._event_at, GROWTH * end, end)
                self._event_slot = _resized(self._event_slot, GROWTH * end, end)
        self._latest_event = max(self._latest_event, at)
        self._event_at[end] = self._latest_event
        self._event_slot[end] = i
        self._event_end = end + 1

    def advance(self, now: datetime) -> None:
        """Expire window counts older than their window (events must be recorded in time order)."""
        self._expire(_micros(now))

    def _expire(self, now: int) -> None:
        end = self._event_end
        for name, width in _WINDOW_MICROS.items():
            start = self._window_start[name]
            cutoff = now - width
            if start == end or self._event_at[start] > cutoff:
                continue
            cut = start + int(np.searchsorted(self._event_at[start:end], cutoff, side="right"))
            np.subtract.at(self._counters[name], self._event_slot[start:cut], 1)
            self._window_start[name] = cut

    def _compact_events(self) -> None:
        """Drop the events every window has expired, when they are at least half of the log."""
        oldest = min(self._window_start.values())
        if oldest < len(self._event_at) // 2:
            return
        live = slice(oldest, self._event_end)
        kept = self._event_end - oldest
        self._event_at[:kept] = self._event_at[live]
        self._event_slot[:kept] = self._event_slot[live]
        self._event_end = kept
        self._window_start = {name: start - oldest for name, start in self._window_start.items()}

    # --- one routing call ----------------------------------------------------------------------

    def candidates(
        self,
        case: CaseContext,
        *,
        top_specialties: int = 3,
        most_active: int = 0,
        max_candidates: int | None = MAX_CANDIDATES,
    ) -> npt.NDArray[np.intp]:
        """Doctors of (or following) the case's likeliest specialties, those who answered similar
        cases, and the `most_active` doctors of the last 30 days, in slot order.

        Beyond `max_candidates` (None: no cap) the similar cases' answerers and the most active
        stay, and the rest are the best of the others by `prior`.
        """
        n = len(self.doctors)
        top = np.argsort(-case.specialty_probabilities, kind="stable")[:top_specialties]
        covers: npt.NDArray[np.bool_] = np.asarray(
            (self._specialty_cols[top, :n] | self._interest_cols[top, :n]).any(axis=0)
        )
        kept = [self.slot[d] for d in case.similar_case_answerers if d in self.slot]
        if most_active:
            kept += _largest(self._counters["answers_30d"][:n], most_active).tolist()
        author = self.slot.get(case.author_id) if case.author_id is not None else None
        covers[kept] = True
        if author is not None:
            covers[author] = False  # nobody answers their own case
        chosen = np.flatnonzero(covers)
        if max_candidates is None or len(chosen) <= max_candidates:
            return chosen
        always = np.unique(np.array([k for k in kept if k != author], dtype=np.intp))
        covers[always] = False
        others = np.flatnonzero(covers)
        room = max(max_candidates - len(always), 0)
        best = others[_largest(self.prior(case, others, top), room)]
        return np.union1d(always, best)

    def prior(
        self, case: CaseContext, doctors: npt.NDArray[np.intp], top: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """How likely each doctor is to answer, cheaply, for the cut to `max_candidates`: their fit
        to the case's `top` specialties (followed ones count 0.3) times a monthly answer rate that
        keeps recency (the last 30 days plus a twelfth of all their answers). Chosen on the 20,000-case
        world's replay, where it keeps the first answerer about as often as lifetime counts and
        clearly more often than 30-day counts, fit or activity alone (bench/scale.md)."""
        p = case.specialty_probabilities[top]
        fit = p @ self._specialty_cols[top[:, None], doctors] + 0.3 * (
            p @ self._interest_cols[top[:, None], doctors]
        )
        c = self._counters
        result: npt.NDArray[np.float64] = fit * (1 + c["answers_30d"][doctors] + c["answers"][doctors] / 12)
        return result

    def features(self, case: CaseContext, doctors: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
        """(len(doctors), len(FEATURES)) as of the case's posting time (call `advance` first)."""
        p = case.specialty_probabilities
        top = int(np.argmax(p))
        c = self._counters
        answers = c["answers"][doctors]
        seen = answers > 0
        count = np.maximum(answers, 1)
        # cosine of the case to each doctor's mean answered case, in float64 from the float32 sums
        # without materialising the means (4x faster at 2,000 candidates, equal to ~1e-16)
        sums = self._profile_sum[doctors].astype(np.float64)
        centroid_norms = np.sqrt(np.einsum("ij,ij->i", sums, sums)) / count
        with np.errstate(invalid="ignore", divide="ignore"):
            dots = sums @ case.vector.astype(np.float64) / count
            similarity = np.where(seen, dots / np.maximum(centroid_norms, 1e-9), np.nan)
            response = np.where(seen, c["log_response_sum"][doctors] / count, np.nan)
            accept_rate = np.where(seen, c["accepted"][doctors] / count, np.nan)
        now_hours = case.posted_at.timestamp() / 3600
        reads = self._reads.get(case.language)
        columns = {
            "specialty_fit": self._specialty_rows[doctors] @ p,
            "interest_fit": self._interest_rows[doctors] @ p,
            "has_top_specialty": self._specialty_rows[doctors, top].astype(np.float64),
            "reads_language": np.zeros(len(doctors)) if reads is None else reads[doctors].astype(np.float64),
            "profile_similarity": similarity,
            "similar_cases_answered": self._similar_counts(case.similar_case_answerers, doctors),
            "answers_total": answers,
            "answers_7d": c["answers_7d"][doctors],
            "answers_30d": c["answers_30d"][doctors],
            "load_24h": c["load_24h"][doctors],
            "local_hour": self.local_hours(case.posted_at, doctors),
            "log_response_hours": response,
            "accept_rate": accept_rate,
            "days_since_last_answer": (now_hours - c["last_answer_hours"][doctors]) / 24,
        }
        return np.column_stack([columns[name] for name in FEATURES])

    def reads(self, language: str) -> npt.NDArray[np.bool_]:
        reads = self._reads.get(language)
        return np.zeros(len(self.doctors), dtype=bool) if reads is None else reads[: len(self.doctors)]

    def _similar_counts(
        self, counts: Mapping[str, int], doctors: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """Each of `doctors`' count in `counts` (by doctor id), in O(len(doctors) log + len(counts))."""
        out = np.zeros(len(doctors))
        known = [(self.slot[d], count) for d, count in counts.items() if d in self.slot]
        if not known or not len(doctors):
            return out
        order = np.argsort(doctors, kind="stable")
        ordered = doctors[order]
        slots = np.array([s for s, _ in known], dtype=np.intp)
        low = np.searchsorted(ordered, slots, side="left")
        high = np.searchsorted(ordered, slots, side="right")
        for (_, count), lo, hi in zip(known, low, high, strict=True):
            out[order[lo:hi]] = count
        return out

    def local_hours(
        self, when: datetime, doctors: npt.NDArray[np.intp] | None = None
    ) -> npt.NDArray[np.float64]:
        """Each doctor's (or each of `doctors`') local clock hour (0-24, fractional) at `when`."""
        local = [when.astimezone(zone) for zone in self._zones]
        by_zone = np.array([t.hour + t.minute / 60 for t in local])
        zones = self._zone_of[: len(self.doctors)] if doctors is None else self._zone_of[doctors]
        result: npt.NDArray[np.float64] = by_zone[zones]
        return result


def _micros(when: datetime) -> int:
    """Exact microseconds since the epoch (a float of seconds would blur a window's edge)."""
    return (when - _EPOCH) // _MICROSECOND


_A = TypeVar("_A", bound=npt.NDArray[Any])


def _resized(array: _A, capacity: int, used: int) -> _A:
    """`array` with room for `capacity` rows, its first `used` rows copied (the rest zero)."""
    out = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    out[:used] = array[:used]
    return out  # type: ignore[return-value]


def _resized_columns(array: _A, capacity: int, used: int) -> _A:
    out = np.zeros((array.shape[0], capacity), dtype=array.dtype)
    out[:, :used] = array[:, :used]
    return out  # type: ignore[return-value]


def _largest(values: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.intp]:
    """Positions of the k largest values, in position order; ties go to the lower position (as a
    stable sort would), whatever the partition algorithm does."""
    if k >= len(values):
        return np.arange(len(values))
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    threshold = np.partition(values, len(values) - k)[len(values) - k]
    above = np.flatnonzero(values > threshold)
    tied = np.flatnonzero(values == threshold)[: k - len(above)]
    return np.union1d(above, tied)
