"""The served doctor list: the best candidates by rule-adjusted score, each with its reasons."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import numpy.typing as npt

from ml.models.doctor_ranker import FEATURES, RankedDoctor
from ml.routing.doctors import DoctorActivity
from ml.taxonomy import load_taxonomy


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


_LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


def doctor_reasons(
    activity: DoctorActivity,
    doctor: int,
    row: npt.NDArray[np.float64],
    *,
    language: str,
    top_codes: Collection[str],
) -> tuple[str, ...]:
    """Short, human-readable reasons behind a doctor's place, strongest evidence first."""
    taxonomy = load_taxonomy()
    profile = activity.doctors[doctor]
    value = {name: row[i] for i, name in enumerate(FEATURES)}
    reasons = []
    if similar := int(value["similar_cases_answered"]):
        reasons.append(f"answered {similar} similar case{'s' if similar > 1 else ''}")
    matching = [c for c in profile.specialties if c in top_codes]
    if matching:
        reasons.append(", ".join(taxonomy.get(c).name_en.lower() for c in matching))
    elif following := [c for c in profile.interests if c in top_codes]:
        reasons.append(f"follows {taxonomy.get(following[0]).name_en.lower()}")
    name = _LANGUAGE_NAMES.get(language, language)
    if value["reads_language"] > 0:
        reasons.append(f"reads {name}")
    else:
        reasons.append(f"does not read {name}: the platform translates")
    if value["answers_30d"] >= 1:
        reasons.append(f"{int(value['answers_30d'])} answers in the last 30 days")
    if np.isfinite(value["log_response_hours"]):
        reasons.append(f"usually answers within {_hours(float(np.exp(value['log_response_hours'])))}")
    return tuple(reasons)


def _hours(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"
