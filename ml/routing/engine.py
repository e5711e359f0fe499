"""One routing call: specialties, urgency, novelty, similar resolved cases and doctors for a post.

The engine encodes the post once and reuses the vector for every model. It holds the live
state a routing call reads — the case index and the doctors' activity — and is told about new
answers, so the doctor features stay current between retrainings. It knows nothing about HTTP
or storage: the service feeds it and turns its results into responses.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ml.embeddings.batching import QueryBatcher
from ml.index import Hit, SearchFilter
from ml.language import UNKNOWN, detect_language
from ml.matching import Matcher, post_text
from ml.models.bundle import RoutingBundle
from ml.models.doctor_ranker import RankedDoctor, apply_rules
from ml.models.specialty import RankedSpecialty
from ml.routing.doctor_ranking import rank_doctors
from ml.routing.doctors import NEIGHBOURS, CaseContext, DoctorActivity, DoctorProfile

# similar cases from another language than the post's, when any is among the candidates: the
# English report must reach a Spanish post even where Spanish cases of the condition fill the top
OTHER_LANGUAGE_CASES = 1

AnswerersOf = Callable[[Sequence[str]], Mapping[str, Sequence[str]]]  # case ids -> doctor ids who answered


@dataclass(frozen=True, slots=True)
class RouteRequest:
    title: str
    text: str
    language: str | None = None  # detected when not given
    author_id: str | None = None
    posted_at: datetime | None = None  # default: now
    case_id: str | None = None  # a stored case is never its own similar case
    limit_specialties: int = 3
    limit_doctors: int = 10
    limit_similar: int = 5
    unavailable: frozenset[str] = field(default_factory=frozenset)  # doctor ids out of routing


@dataclass(frozen=True, slots=True)
class RouteResult:
    language: str
    specialties: tuple[RankedSpecialty, ...]
    doctors: tuple[RankedDoctor, ...]
    similar: tuple[Hit, ...]
    urgency: str
    urgency_probabilities: dict[str, float]
    novelty: float
    broadcast: bool  # novel enough to show the case to everyone, not just the routed doctors


class RoutingEngine:
    def __init__(
        self,
        bundle: RoutingBundle,
        matcher: Matcher,
        activity: DoctorActivity,
        answerers_of: AnswerersOf,
        *,
        queries: QueryBatcher | None = None,
    ) -> None:
        """`queries` encodes the posts of concurrent requests together (default: each alone)."""
        bundle.check_encoder(matcher.encoder.fingerprint.token)
        self.bundle = bundle
        self.matcher = matcher
        self.queries = queries
        self.activity = activity
        self._answerers_of = answerers_of
        self._activity_lock = threading.Lock()  # answers arrive while routes read the same arrays

    def swap_bundle(self, bundle: RoutingBundle) -> None:
        """Serve another trained bundle from the next request on (requests in flight finish on theirs)."""
        bundle.check_encoder(self.matcher.encoder.fingerprint.token)
        self.bundle = bundle  # one reference assignment: atomic, no lock needed

    def route(self, request: RouteRequest) -> RouteResult:
        bundle = self.bundle  # this request uses one bundle throughout, even if a swap happens now
        text = post_text(request.title, request.text)
        language = request.language or detect_language(text)
        vector = self._encode(text)
        prediction = bundle.predict_cases([text], vector[None, :], k=request.limit_specialties)[0]
        probabilities = prediction.specialty_probabilities
        exclude = (request.case_id,) if request.case_id else ()
        resolved = SearchFilter(resolved_only=True, exclude_ids=exclude)
        similar, nearest = self.matcher.search_with_neighbours(
            text,
            vector,
            k=request.limit_similar,
            neighbours=NEIGHBOURS,
            search_filter=resolved,
            language=language if language != UNKNOWN else None,
            other_languages=OTHER_LANGUAGE_CASES,
        )
        novelty = float(bundle.novelty.score(np.array([[h.score for h in nearest]]))[0])
        doctors = self._doctors(
            bundle, request, vector, language, probabilities, [h.case_id for h in nearest]
        )
        return RouteResult(
            language=language,
            specialties=prediction.specialties,
            doctors=tuple(doctors),
            similar=tuple(similar),
            urgency=prediction.urgency,
            urgency_probabilities=prediction.urgency_probabilities,
            novelty=novelty,
            broadcast=novelty >= bundle.novelty.config.broadcast_above,
        )

    def _encode(self, text: str) -> npt.NDArray[np.float32]:
        if self.queries is None:
            return np.asarray(self.matcher.encoder.encode_queries([text])[0], dtype=np.float32)
        return self.queries.encode(text)

    def record_answer(
        self,
        doctor_id: str,
        *,
        case_vector: npt.NDArray[np.float32],
        posted_at: datetime,
        answered_at: datetime,
    ) -> None:
        with self._activity_lock:
            if doctor_id in self.activity.slot:
                self.activity.record_answer(
                    doctor_id, case_vector=case_vector, posted_at=posted_at, answered_at=answered_at
                )

    def upsert_doctor(self, profile: DoctorProfile) -> None:
        with self._activity_lock:
            self.activity.upsert_doctor(profile)

    def record_acceptance(self, doctor_id: str) -> None:
        with self._activity_lock:
            if doctor_id in self.activity.slot:
                self.activity.record_acceptance(doctor_id)

    def save_activity(self, path: Path, *, watermark: int) -> None:
        """Snapshot the doctors' activity (routes advance its windows: they wait meanwhile)."""
        with self._activity_lock:
            self.activity.save(path, watermark=watermark)

    def _doctors(
        self,
        bundle: RoutingBundle,
        request: RouteRequest,
        vector: npt.NDArray[np.float32],
        language: str,
        probabilities: npt.NDArray[np.float64],
        nearest_ids: Sequence[str],
    ) -> list[RankedDoctor]:
        answered = self._answerers_of(nearest_ids)
        similar_answerers = Counter(d for case_id in nearest_ids for d in answered.get(case_id, ()))
        posted_at = request.posted_at or datetime.now(UTC)
        context = CaseContext(
            vector,
            language if language != UNKNOWN else "en",
            posted_at,
            probabilities,
            similar_answerers,
            request.author_id,
        )
        with self._activity_lock:
            self.activity.advance(posted_at)
            candidates = self.activity.candidates(context, **bundle.candidates)
            features = self.activity.features(context, candidates)
        unavailable = np.array(
            [self.activity.doctors[i].doctor_id in request.unavailable for i in candidates], dtype=bool
        )
        scores = apply_rules(bundle.ranker.score(features), features, bundle.rules, unavailable=unavailable)
        top_codes: Collection[str] = [
            bundle.router.codes[j] for j in np.argsort(-probabilities, kind="stable")[:3]
        ]
        return rank_doctors(
            self.activity,
            candidates,
            features,
            scores,
            language=context.language,
            top_codes=top_codes,
            k=request.limit_doctors,
        )
