"""The latent behaviour model: who answers a posted case, when, and whose answer is accepted.

Each doctor d answers a case c posted at time t0 as an inhomogeneous Poisson process (at most
one answer each) with hazard, `s` hours after posting,

    h_d(s) = base_rate * activity_d * speed_d * fit(d, c) * language(d, c) * interest(d, c)
             * history(d, c) * load_d(t0) * hourly(local hour of d at t0 + s) * exp(-s / decay)

(see `BehaviourParams` for each factor). Answers are checked in time order; each is right with
a probability that grows with the doctor's skill, specialty fit and experience of the condition;
the author accepts the first right answer after a confirmation delay, which resolves the case.
The whole model is documented in data/synthetic/README.md.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

# Share of doctors' answering attention by local hour (0-23): quiet at night, peaks at lunch and evening.
HOURLY_ACTIVITY: tuple[float, ...] = (
    0.15,
    0.08,
    0.05,
    0.04,
    0.04,
    0.08,
    0.30,
    0.70,
    1.00,
    1.00,
    0.90,
    0.90,
    1.20,
    1.10,
    0.90,
    0.90,
    1.00,
    1.00,
    1.10,
    1.30,
    1.40,
    1.20,
    0.80,
    0.40,
)


@dataclass(frozen=True)
class BehaviourParams:
    base_rate: float = 0.00076  # hazard scale per doctor and hour; calibrated to a 1.5 h median (README)
    # The base rate is per doctor of a network of this size and scales as reference / size, so that
    # a small sample world answers as fast as the full one (the network's capacity stays fixed).
    reference_doctors: int = 5_000
    language_penalty: float = 0.2  # a case in a language the doctor does not read (platform translates)
    favourite_boost: float = 3.0  # a condition among the doctor's latent favourites
    history_boost: float = 0.3  # per earlier answer to the same condition ...
    history_cap: int = 5  # ... counting at most this many
    load_half: float = 4.0  # answers given in the last `load_window_hours` that halve the rate
    load_window_hours: float = 24.0
    decay_hours: float = 12.0  # attention to a post fades as it sinks down the feed
    horizon_hours: float = 72.0  # no answers after this
    step_minutes: float = 5.0
    # P(answer is right) = sigmoid(right_bias + right_skill * skill + right_fit * fit + right_history * h)
    right_bias: float = -2.2
    right_skill: float = 2.5
    right_fit: float = 2.0
    right_history: float = 0.25
    confirm_median_hours: float = 1.5  # the author confirms a right answer after a log-normal delay
    confirm_sigma: float = 1.0
    hourly_activity: tuple[float, ...] = field(default=HOURLY_ACTIVITY)


@dataclass(frozen=True)
class Answer:
    doctor: int
    hours_after_post: float
    right: bool


@dataclass(frozen=True)
class CaseOutcome:
    answers: tuple[Answer, ...]  # in time order
    accepted: int | None  # index into answers
    resolved_hours_after_post: float | None


@dataclass
class DoctorState:
    """Everything about the doctors that the simulation reads, as arrays indexed by doctor."""

    activity: npt.NDArray[np.float64]  # answer_activity * speed
    skill: npt.NDArray[np.float64]
    fit: npt.NDArray[np.float32]  # (doctors, conditions)
    favourite: npt.NDArray[np.bool_]  # (doctors, conditions)
    reads: dict[str, npt.NDArray[np.bool_]]  # language -> which doctors read it
    zone: npt.NDArray[np.intp]  # index into the offset table's rows


class BehaviourSimulator:
    """Replays cases in posting order, keeping each doctor's load and answer history up to date."""

    def __init__(
        self,
        params: BehaviourParams,
        doctors: DoctorState,
        utc_offsets: npt.NDArray[np.float32],
        rng: np.random.Generator,
    ) -> None:
        self.params = params
        self.doctors = doctors
        self.utc_offsets = utc_offsets  # (zones, days) hours, day 0 = the world's start
        self.rng = rng
        n_doctors, n_conditions = doctors.fit.shape
        self._base_rate = params.base_rate * params.reference_doctors / n_doctors
        self.history = np.zeros((n_doctors, n_conditions), dtype=np.int32)
        self.load = np.zeros(n_doctors, dtype=np.float64)
        self._pending: list[tuple[float, int, int]] = []  # (answer time, doctor, condition) not yet seen
        self._recent: deque[tuple[float, int]] = deque()  # answers inside the load window
        self._steps = np.arange(0.0, params.horizon_hours + 1e-9, params.step_minutes / 60.0)
        self._hourly = np.asarray(params.hourly_activity, dtype=np.float64)

    def simulate(self, *, posted_hours: float, condition: int, language: str, author: int) -> CaseOutcome:
        """Who answers a case posted `posted_hours` after the world's start, and what happens."""
        self._advance_to(posted_hours)
        p, d = self.params, self.doctors
        rate = self.answer_rates(condition=condition, language=language, author=author)
        needed = np.asarray(self.rng.exponential(size=rate.shape[0]), dtype=np.float64)
        answering, times = self.answer_times(rate, posted_hours, needed)
        order = np.argsort(times, kind="stable")
        answers = []
        for i in order:
            doctor = int(answering[i])
            logit = (
                p.right_bias
                + p.right_skill * d.skill[doctor]
                + p.right_fit * d.fit[doctor, condition]
                + p.right_history * min(int(self.history[doctor, condition]), p.history_cap)
            )
            right = bool(self.rng.random() < 1.0 / (1.0 + np.exp(-logit)))
            answers.append(Answer(doctor, float(times[i]), right))
            heapq.heappush(self._pending, (posted_hours + float(times[i]), doctor, condition))
        accepted = next((k for k, a in enumerate(answers) if a.right), None)
        resolved = None
        if accepted is not None:
            delay = float(self.rng.lognormal(np.log(p.confirm_median_hours), p.confirm_sigma))
            resolved = answers[accepted].hours_after_post + delay
        return CaseOutcome(tuple(answers), accepted, resolved)

    def answer_rates(self, *, condition: int, language: str, author: int) -> npt.NDArray[np.float64]:
        """Each doctor's hazard scale for this case now (before hour-of-day and feed decay)."""
        p, d = self.params, self.doctors
        rate = (
            self._base_rate
            * d.activity
            * d.fit[:, condition]
            * np.where(d.reads[language], 1.0, p.language_penalty)
            * np.where(d.favourite[:, condition], p.favourite_boost, 1.0)
            * (1.0 + p.history_boost * np.minimum(self.history[:, condition], p.history_cap))
            / (1.0 + self.load / p.load_half)
        )
        rate[author] = 0.0
        return np.asarray(rate, dtype=np.float64)

    def answer_times(
        self, rate: npt.NDArray[np.float64], posted_hours: float, needed: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Who answers within the horizon and when (hours after posting), given unit-exponential draws."""
        d = self.doctors
        cumulative = self._cumulative_attention(posted_hours)  # (zones, steps)
        total = rate * cumulative[d.zone, -1]
        answering = np.flatnonzero(needed < total)
        times = np.array(
            [np.interp(needed[i] / rate[i], cumulative[d.zone[i]], self._steps) for i in answering]
        )
        return answering, times

    def _cumulative_attention(self, posted_hours: float) -> npt.NDArray[np.float64]:
        """Integral of hourly activity x decay from posting to each step, per time zone."""
        when = posted_hours + self._steps  # hours since the world's start (UTC)
        day = np.minimum((when // 24).astype(np.intp), self.utc_offsets.shape[1] - 1)
        local_hour = ((when[None, :] + self.utc_offsets[:, day]) % 24).astype(np.intp)
        density = self._hourly[local_hour] * np.exp(-self._steps / self.params.decay_hours)[None, :]
        step = self.params.step_minutes / 60.0
        cumulative = np.zeros_like(density)
        cumulative[:, 1:] = np.cumsum(density[:, :-1] * step, axis=1)
        return cumulative

    def _advance_to(self, now: float) -> None:
        """Apply answers given before `now` to history and load; expire load older than the window."""
        while self._pending and self._pending[0][0] <= now:
            when, doctor, condition = heapq.heappop(self._pending)
            self.history[doctor, condition] += 1
            self.load[doctor] += 1
            self._recent.append((when, doctor))
        horizon = now - self.params.load_window_hours
        while self._recent and self._recent[0][0] < horizon:
            _, doctor = self._recent.popleft()
            self.load[doctor] -= 1
