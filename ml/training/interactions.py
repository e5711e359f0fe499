"""Doctor-ranking examples from a platform's answers and acceptances, replayed in time order.

Every case of the requested splits becomes one `RankingExample`: its candidate doctors, their
features as of the moment it was posted (only earlier answers count), and who really answered.
The same replay serves the synthetic world and a store export (`ml.data.PlatformData`): the
ranker learns on dev cases and is scored on later ones, with the specialty router (trained on
train cases) supplying probabilities.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from ml.data import AnswerRecord, PlatformData, TimeSplit
from ml.routing.doctors import NEIGHBOURS, CaseContext, DoctorActivity, DoctorProfile


@dataclass(frozen=True, slots=True)
class RankingExample:
    case_id: str
    split: str
    language: str
    candidates: npt.NDArray[np.intp]  # doctor slots
    features: npt.NDArray[np.float64]  # (candidates, FEATURES)
    answered: npt.NDArray[np.bool_]  # per candidate
    first_answerer: int | None  # doctor slot (may be outside the candidates)
    accepted_answerer: int | None
    most_active_of_top_specialty: npt.NDArray[np.intp]  # the activity baseline's top 10 slots


def doctor_profiles(data: PlatformData) -> list[DoctorProfile]:
    return [
        DoctorProfile(d.doctor_id, d.specialties, d.interests, d.languages, d.timezone) for d in data.doctors
    ]


def replay(
    data: PlatformData,
    split: TimeSplit,
    case_vectors: npt.NDArray[np.float32],
    specialty_probabilities: Callable[[Sequence[int]], npt.NDArray[np.float64]],
    *,
    splits: Sequence[str] = ("dev", "test"),
    top_specialties: int = 3,
    most_active: int = 0,
    neighbours: dict[int, npt.NDArray[np.intp]] | None = None,
    on_case: Callable[[], None] | None = None,
) -> tuple[DoctorActivity, list[RankingExample]]:
    """Replay every answer and acceptance; build examples for cases of `splits`.

    `case_vectors` follow `data.cases`' order; `specialty_probabilities(rows)` returns the router's
    (len(rows), 63) probabilities for those rows; `neighbours` (from `nearest_resolved`) is
    computed when not given. An answer from a doctor without a profile still counts for the case
    (who answered it) but not for any doctor's activity. Returns the final activity state too.
    """
    cases = data.cases
    activity = DoctorActivity(doctor_profiles(data), case_vectors.shape[1])
    row_of = {c.case_id: i for i, c in enumerate(cases)}
    answers = [a for a in data.answers if a.case_id in row_of]
    wanted = [i for i, c in enumerate(cases) if split.of(c.created_at) in splits]
    probabilities = dict(zip(wanted, specialty_probabilities(wanted), strict=True)) if wanted else {}
    if neighbours is None:
        neighbours, _ = nearest_resolved(data, case_vectors, wanted)

    answers_of: dict[int, list[AnswerRecord]] = {}
    for answer in answers:
        answers_of.setdefault(row_of[answer.case_id], []).append(answer)
    accepted_by = {a.case_id: a.doctor_id for a in answers if a.accepted}
    # (time, order, answer or None, accepted doctor): answers and acceptances enter the state when they happen
    events: list[tuple[datetime, int, AnswerRecord | None, str]] = [
        (a.created_at, n, a, a.doctor_id) for n, a in enumerate(answers)
    ] + [
        (r.resolved_at, len(answers) + n, None, accepted_by[r.case_id])
        for n, r in enumerate(data.resolutions)
        if r.case_id in accepted_by
    ]
    heapq.heapify(events)

    examples = []
    for row in sorted(range(len(cases)), key=lambda i: (cases[i].created_at, i)):
        case = cases[row]
        posted_at = case.created_at
        while events and events[0][0] < posted_at:
            _, _, event, doctor_id = heapq.heappop(events)
            if doctor_id not in activity.slot:
                continue  # no profile for this doctor (yet)
            if event is not None:  # an answer (None: an acceptance)
                answered_row = row_of[event.case_id]
                activity.record_answer(
                    doctor_id,
                    case_vector=case_vectors[answered_row],
                    posted_at=cases[answered_row].created_at,
                    answered_at=event.created_at,
                )
            else:
                activity.record_acceptance(doctor_id)
        activity.advance(posted_at)
        if row not in probabilities:
            continue
        similar = Counter(
            a.doctor_id
            for neighbour in neighbours[row]
            for a in answers_of.get(neighbour, [])
            if a.created_at < posted_at
        )
        context = CaseContext(
            case_vectors[row], case.language, posted_at, probabilities[row], similar, case.author_id
        )
        candidates = activity.candidates(context, top_specialties=top_specialties, most_active=most_active)
        known = [a for a in answers_of.get(row, []) if a.doctor_id in activity.slot]
        examples.append(_example(activity, context, candidates, case.case_id, split.of(posted_at), known))
        if on_case:
            on_case()
    return activity, examples


def _example(
    activity: DoctorActivity,
    context: CaseContext,
    candidates: npt.NDArray[np.intp],
    case_id: str,
    split: str,
    answers: list[AnswerRecord],
) -> RankingExample:
    ordered = sorted(answers, key=lambda a: a.created_at)
    answerers = {activity.slot[a.doctor_id] for a in ordered}
    accepted = [activity.slot[a.doctor_id] for a in ordered if a.accepted]
    top = int(np.argmax(context.specialty_probabilities))
    of_top = np.flatnonzero(activity.specialty_mask[:, top])
    of_top = of_top[of_top != activity.slot.get(context.author_id or "", -1)]
    most_active = of_top[np.argsort(-activity.answers[of_top], kind="stable")[:10]]
    return RankingExample(
        case_id=case_id,
        split=split,
        language=context.language,
        candidates=candidates,
        features=activity.features(context, candidates),
        answered=np.isin(candidates, list(answerers)),
        first_answerer=activity.slot[ordered[0].doctor_id] if ordered else None,
        accepted_answerer=accepted[0] if accepted else None,
        most_active_of_top_specialty=most_active,
    )


def nearest_resolved(
    data: PlatformData,
    vectors: npt.NDArray[np.float32],
    queries: Sequence[int],
    *,
    k: int = NEIGHBOURS,
    block: int = 256,
) -> tuple[dict[int, npt.NDArray[np.intp]], dict[int, npt.NDArray[np.float64]]]:
    """For each query row (`data.cases` order), the rows and cosines of the k most similar cases
    resolved before it was posted."""
    row_of = {c.case_id: i for i, c in enumerate(data.cases)}
    resolved_hours = np.full(len(data.cases), np.inf)
    for r in data.resolutions:
        if r.case_id in row_of:
            resolved_hours[row_of[r.case_id]] = r.resolved_at.timestamp() / 3600
    posted_hours = np.array([c.created_at.timestamp() / 3600 for c in data.cases])
    rows_out: dict[int, npt.NDArray[np.intp]] = {}
    sims_out: dict[int, npt.NDArray[np.float64]] = {}
    k = min(k, len(data.cases) - 1)  # a young platform may hold fewer cases than k
    if k < 1:
        return {int(q): np.zeros(0, np.intp) for q in queries}, {int(q): np.zeros(0) for q in queries}
    for start in range(0, len(queries), block):
        rows = np.asarray(queries[start : start + block], dtype=np.intp)
        similarity = (vectors[rows] @ vectors.T).astype(np.float64)
        similarity[resolved_hours[None, :] >= posted_hours[rows, None]] = -np.inf
        top = np.argpartition(-similarity, k, axis=1)[:, :k]
        scores = np.take_along_axis(similarity, top, 1)
        for row, found, score in zip(rows, top, scores, strict=True):
            keep = np.isfinite(score)
            order = np.argsort(-score[keep], kind="stable")
            rows_out[int(row)] = found[keep][order]
            sims_out[int(row)] = score[keep][order]
    return rows_out, sims_out
