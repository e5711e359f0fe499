"""Doctor-ranking examples from the synthetic interaction log, replayed in time order.

Every case of the requested splits becomes one `RankingExample`: its candidate doctors, their
features as of the moment it was posted (only earlier answers count), and who really answered.
Splits are by month (`ml.synthetic.splits`): the ranker learns on dev months and is scored on
test months, with the specialty router (trained on train months) supplying probabilities.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ml.routing.doctors import NEIGHBOURS, CaseContext, DoctorActivity, DoctorProfile
from ml.synthetic.splits import split_of
from ml.synthetic.world import read_table


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


def world_doctors(world_dir: Path) -> list[DoctorProfile]:
    return [
        DoctorProfile(
            r["doctor_id"],
            tuple(r["specialties"]),
            tuple(r["interests"]),
            tuple(r["languages"]),
            r["timezone"],
        )
        for r in read_table(world_dir, "doctors").to_pylist()
    ]


def replay_world(
    world_dir: Path,
    case_vectors: npt.NDArray[np.float32],
    specialty_probabilities: Callable[[Sequence[int]], npt.NDArray[np.float64]],
    *,
    splits: Sequence[str] = ("dev", "test"),
    top_specialties: int = 3,
    most_active: int = 0,
    neighbours: dict[int, npt.NDArray[np.intp]] | None = None,
    on_case: Callable[[], None] | None = None,
) -> tuple[DoctorActivity, list[RankingExample]]:
    """Replay the whole log; build examples for cases of `splits`.

    `case_vectors` follow the cases table's row order; `specialty_probabilities(rows)` returns the
    router's (len(rows), 63) probabilities for those rows; `neighbours` (from `nearest_resolved`)
    is computed when not given. Returns the final activity state too.
    """
    cases = read_table(world_dir, "cases").to_pylist()
    answers = read_table(world_dir, "answers").to_pylist()
    resolutions = read_table(world_dir, "resolutions").to_pylist()
    activity = DoctorActivity(world_doctors(world_dir), case_vectors.shape[1])
    row_of = {c["case_id"]: i for i, c in enumerate(cases)}
    wanted = [i for i, c in enumerate(cases) if split_of(c["created_at"]) in splits]
    probabilities = dict(zip(wanted, specialty_probabilities(wanted), strict=True))
    if neighbours is None:
        neighbours, _ = nearest_resolved(world_dir, case_vectors, wanted)

    answers_of: dict[int, list[dict[str, object]]] = {}
    for answer in answers:
        answers_of.setdefault(row_of[answer["case_id"]], []).append(answer)
    # (time, order, kind, payload): answers and acceptances enter the state when they happen
    events: list[tuple[datetime, int, str, dict[str, object]]] = [
        (a["created_at"], n, "answer", a) for n, a in enumerate(answers)
    ] + [(r["resolved_at"], len(answers) + n, "accept", r) for n, r in enumerate(resolutions)]
    heapq.heapify(events)

    examples = []
    for row in sorted(range(len(cases)), key=lambda i: (cases[i]["created_at"], i)):
        case = cases[row]
        posted_at: datetime = case["created_at"]
        while events and events[0][0] < posted_at:
            _, _, kind, payload = heapq.heappop(events)
            if kind == "answer":
                answered_row = row_of[str(payload["case_id"])]
                activity.record_answer(
                    str(payload["doctor_id"]),
                    case_vector=case_vectors[answered_row],
                    posted_at=cases[answered_row]["created_at"],
                    answered_at=payload["created_at"],  # type: ignore[arg-type]
                )
            else:
                activity.record_acceptance(str(payload["accepted_doctor_id"]))
        activity.advance(posted_at)
        if row not in probabilities:
            continue
        similar = Counter(
            str(a["doctor_id"])
            for neighbour in neighbours[row]
            for a in answers_of.get(neighbour, [])
            if a["created_at"] < posted_at  # type: ignore[operator]
        )
        context = CaseContext(
            case_vectors[row], case["language"], posted_at, probabilities[row], similar, case["author_id"]
        )
        candidates = activity.candidates(context, top_specialties=top_specialties, most_active=most_active)
        examples.append(_example(activity, context, candidates, case, answers_of.get(row, [])))
        if on_case:
            on_case()
    return activity, examples


def _example(
    activity: DoctorActivity,
    context: CaseContext,
    candidates: npt.NDArray[np.intp],
    case: dict[str, object],
    answers: list[dict[str, object]],
) -> RankingExample:
    ordered = sorted(answers, key=lambda a: a["created_at"])  # type: ignore[arg-type, return-value]
    answerers = {activity.slot[str(a["doctor_id"])] for a in ordered}
    accepted = [activity.slot[str(a["doctor_id"])] for a in ordered if a["accepted"]]
    top = int(np.argmax(context.specialty_probabilities))
    of_top = np.flatnonzero(activity.specialty_mask[:, top])
    of_top = of_top[of_top != activity.slot.get(str(case["author_id"]), -1)]
    most_active = of_top[np.argsort(-activity.answers[of_top], kind="stable")[:10]]
    return RankingExample(
        case_id=str(case["case_id"]),
        split=split_of(context.posted_at),
        language=context.language,
        candidates=candidates,
        features=activity.features(context, candidates),
        answered=np.isin(candidates, list(answerers)),
        first_answerer=activity.slot[str(ordered[0]["doctor_id"])] if ordered else None,
        accepted_answerer=accepted[0] if accepted else None,
        most_active_of_top_specialty=most_active,
    )


def nearest_resolved(
    world_dir: Path,
    vectors: npt.NDArray[np.float32],
    queries: Sequence[int],
    *,
    k: int = NEIGHBOURS,
    block: int = 256,
) -> tuple[dict[int, npt.NDArray[np.intp]], dict[int, npt.NDArray[np.float64]]]:
    """For each query row (cases table order), the rows and cosines of the k most similar cases
    resolved before it was posted."""
    cases = read_table(world_dir, "cases").select(["case_id", "created_at"]).to_pylist()
    row_of = {c["case_id"]: i for i, c in enumerate(cases)}
    resolved_hours = np.full(len(cases), np.inf)
    for r in read_table(world_dir, "resolutions").select(["case_id", "resolved_at"]).to_pylist():
        resolved_hours[row_of[r["case_id"]]] = r["resolved_at"].timestamp() / 3600
    posted_hours = np.array([c["created_at"].timestamp() / 3600 for c in cases])
    rows_out: dict[int, npt.NDArray[np.intp]] = {}
    sims_out: dict[int, npt.NDArray[np.float64]] = {}
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
