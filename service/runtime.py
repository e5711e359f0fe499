"""Everything a serving process holds, and how it gets there at start-up.

Start-up, in order: migrate the store; seed it from the synthetic world when it has never held
data; open the index snapshot and catch it up from the store; rebuild doctor activity and the
answer book from the stored answers; load the MLflow champion; follow the alias from then on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ml.embeddings import Encoder, load_encoder
from ml.embeddings.batching import QueryBatcher
from ml.embeddings.cache import CachingEncoder
from ml.index import CaseIndex
from ml.matching import Matcher, post_text
from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint
from ml.privacy.deid import Deidentifier
from ml.progress import NoProgress, Progress
from ml.registry import NoChampionError, champion_version, configure, load_bundle
from ml.routing.answers import AnswerBook
from ml.routing.doctors import DoctorActivity, DoctorProfile
from ml.routing.engine import RoutingEngine
from service.auth import Authenticator, parse_api_keys
from service.champion import ChampionWatcher
from service.index_sync import IndexSync
from service.ratelimit import RateLimiter
from service.seed import seed_store
from service.settings import Settings
from service.store.migrate import upgrade_to_head
from service.store.records import Doctor
from service.store.repository import CaseStore

logger = logging.getLogger("casematch.runtime")


def doctor_profile(doctor: Doctor) -> DoctorProfile:
    return DoctorProfile(
        doctor.doctor_id, doctor.specialties, doctor.interests, doctor.languages, doctor.timezone
    )


@dataclass
class Runtime:
    settings: Settings
    auth: Authenticator
    store: CaseStore
    encoder: Encoder
    deid: Deidentifier
    sync: IndexSync
    answers: AnswerBook
    engine: RoutingEngine
    watcher: ChampionWatcher
    unavailable: set[str]  # doctors who asked not to be routed to, kept in memory for every call
    limiter: RateLimiter
    _closed: bool = field(default=False, init=False)

    @property
    def model_version(self) -> int | None:
        return self.watcher.version

    @classmethod
    def start(cls, settings: Settings, *, progress: Progress | None = None, watch: bool = True) -> Runtime:
        progress = progress or NoProgress()
        auth = Authenticator(parse_api_keys(settings.api_keys))
        settings.home.mkdir(parents=True, exist_ok=True)
        upgrade_to_head(settings.database_url)
        store = CaseStore.from_url(settings.database_url)
        deid = Deidentifier()
        if store.head_seq() == 0 and settings.seed_world:
            world_dir = settings.synthetic_dir / settings.seed_world
            if (world_dir / "manifest.json").exists():
                logger.info("empty store: loading the synthetic world %r", settings.seed_world)
                cache = DeidentifiedCache(settings.deidentified_cache, packaged_fingerprint())
                seed_store(store, world_dir, progress=progress, cache=cache)  # one process per core
                cache.close()
        encoder = load_encoder(
            settings.encoder, threads=settings.encoder_threads, cache_path=settings.embedding_cache
        )

        def matcher_for(index: CaseIndex | None) -> Matcher:
            return Matcher(encoder, index) if index is not None else Matcher.empty(encoder)

        sync = IndexSync.open(store, matcher_for, settings.index_dir)
        progress.stage("indexing cases", max(store.head_seq() - sync.watermark, 0))
        sync.catch_up(on_batch=progress.advance)
        sync.save_snapshot()

        configure(settings.mlflow_tracking_uri, settings.home / "mlartifacts")
        version = champion_version()
        if version is None:
            raise NoChampionError("no champion model registered: run `casematch bootstrap` first")
        bundle = load_bundle(version)
        activity, answers = _rebuild_activity(store, sync.matcher.index, encoder.dim)
        # posts to route are encoded without the disk cache: a new post's vector is seldom asked for again
        uncached = encoder.inner if isinstance(encoder, CachingEncoder) else encoder
        queries = QueryBatcher(uncached, max_batch=settings.route_batch)
        engine = RoutingEngine(bundle, sync.matcher, activity, answers.answerers_of, queries=queries)
        watcher = ChampionWatcher(
            lambda new, _: engine.swap_bundle(new), interval_seconds=settings.model_poll_seconds
        )
        watcher.version = version
        if watch:
            watcher.start()
        unavailable = {d.doctor_id for d in store.list_doctors() if not d.available}
        limiter = RateLimiter(settings.rate_limit_per_minute)
        return cls(settings, auth, store, encoder, deid, sync, answers, engine, watcher, unavailable, limiter)

    def case_vector(self, title: str, text: str) -> npt.NDArray[np.float32]:
        return np.asarray(self.encoder.encode_documents([post_text(title, text)])[0], dtype=np.float32)

    def forget_embedding(self, title: str, text: str) -> None:
        """Drop a post's vector from the encoder's disk cache, if it has one (erasure)."""
        forget = getattr(self.encoder, "forget", None)
        if forget is not None:
            forget([post_text(title, text)])

    def close(self) -> None:
        """Stop following the champion, save the index snapshot, close the store (once)."""
        if self._closed:
            return
        self._closed = True
        self.watcher.stop()
        self.sync.save_snapshot()
        self.store.close()
        logger.info("runtime closed: index snapshot saved")


def _rebuild_activity(store: CaseStore, index: CaseIndex, dim: int) -> tuple[DoctorActivity, AnswerBook]:
    """Doctor activity and the answer book, replayed from every stored answer in time order.

    Case vectors come from the index, which the store has just caught up: nothing is encoded again.
    """
    activity = DoctorActivity([doctor_profile(d) for d in store.list_doctors()], dim)
    book = AnswerBook()
    vectors: dict[str, npt.NDArray[np.float32]] = {}
    for entry in store.all_answers():
        answer = entry.answer
        book.add(answer.case_id, answer.doctor_id)
        if answer.doctor_id not in activity.slot:
            continue  # an answer from a doctor whose profile has not arrived yet
        if answer.case_id not in vectors:
            vectors.update(index.vectors([answer.case_id]))
        activity.record_answer(
            answer.doctor_id,
            case_vector=vectors[answer.case_id],
            posted_at=entry.case_posted_at,
            answered_at=answer.created_at,
        )
        if answer.accepted:
            activity.record_acceptance(answer.doctor_id)
    return activity, book
