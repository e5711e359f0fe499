"""The served doctor list: the best candidates by rule-adjusted score, each with its reasons."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import numpy.typing as npt

from ml.models.doctor_ranker import FEATURES, RankedDoctor
from ml.reasons import Reason
from ml.routing.doctors import DoctorActivity


def rank_doctors(
    activity: DoctorActivity,
    candidates: npt.NDArray[np.intp],
    features: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float64],
    *,
    language: str,
    top_codes: Collection[str],
    k: int = 10,
) -> list[RankedDoctor]:
    """The k best candidates by rule-adjusted `scores`, with reasons; those out of routing are left out."""
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= 0][:k]
    return [
        RankedDoctor(
            activity.doctors[candidates[i]].doctor_id,
            float(scores[i]),
            doctor_reasons(activity, int(candidates[i]), features[i], language=language, top_codes=top_codes),
        )
        for i in order
    ]


def doctor_reasons(
    activity: DoctorActivity,
    doctor: int,
    row: npt.NDArray[np.float64],
    *,
    language: str,
    top_codes: Collection[str],
) -> tuple[Reason, ...]:
    """The reasons behind a doctor's place, strongest evidence first, as codes with parameters."""
    profile = activity.doctors[doctor]
    value = {name: row[i] for i, name in enumerate(FEATURES)}
    reasons = []
    if similar := int(value["similar_cases_answered"]):
        reasons.append(Reason("answered_similar", {"count": similar}))
    matching = tuple(c for c in profile.specialties if c in top_codes)
    if matching:
        reasons.append(Reason("practises", {"specialties": matching}))
    elif following := [c for c in profile.interests if c in top_codes]:
        reasons.append(Reason("follows", {"specialty": following[0]}))
    code = "reads_language" if value["reads_language"] > 0 else "needs_translation"
    reasons.append(Reason(code, {"language": language}))
    if value["answers_30d"] >= 1:
        reasons.append(Reason("answers_last_30_days", {"count": int(value["answers_30d"])}))
    if np.isfinite(value["log_response_hours"]):
        minutes = round(float(np.exp(value["log_response_hours"])) * 60)
        reasons.append(Reason("usually_answers_within", {"minutes": minutes}))
    return tuple(reasons)
