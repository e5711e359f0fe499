"""Everything a serving process holds, and how it gets there at start-up.

Start-up, in order: migrate the store; seed it from the synthetic world when it has never held
data; open the index snapshot and catch it up from the store; load the MLflow champion; restore
doctor activity and the answer book from their snapshot beside the index (or replay the store's
answers up to the index's watermark), availability from the store; then follow the store's change
feed (and the champion alias) from there. Every worker does the same, so a write taken by one
reaches the others, and no state lives only where it was written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
import numpy.typing as npt

from ml.embeddings import Encoder, load_encoder
from ml.embeddings.batching import QueryBatcher
from ml.embeddings.cache import CachingEncoder
from ml.index import CaseIndex
from ml.matching import Matcher, post_text
from ml.models.bundle import RoutingBundle
from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint
from ml.privacy.deid import Deidentifier
from ml.progress import NoProgress, Progress
from ml.registry import NoChampionError, champion_version, configure, load_bundle
from ml.routing.answers import AnswerBook
from ml.routing.doctors import DoctorActivity
from ml.routing.engine import RoutingEngine
from service.auth import Authenticator, parse_api_keys
from service.champion import ChampionWatcher
from service.follower import StoreFollower
from service.live_state import LiveRoutingState, doctor_profile, load_saved_state
from service.ratelimit import RateLimiter
from service.seed import seed_store
from service.settings import Settings
from service.store.migrate import upgrade_to_head
from service.store.repository import CaseStore

logger = logging.getLogger("casematch.runtime")
REBUILD_PAGE = 5_000  # answers replayed per index lookup at start-up


@dataclass
class Runtime:
    settings: Settings
    auth: Authenticator
    store: CaseStore
    encoder: Encoder
    deid: Deidentifier
    follower: StoreFollower
    state: LiveRoutingState
    watcher: ChampionWatcher
    limiter: RateLimiter
    _closed: bool = field(default=False, init=False)

    @property
    def engine(self) -> RoutingEngine:
        return self.state.engine

    @property
    def model_version(self) -> int | None:
        return self.watcher.version

    @classmethod
    def start(cls, settings: Settings, *, progress: Progress | None = None, watch: bool = True) -> Runtime:
        """Start a serving process; `watch` follows the store and the champion alias on threads."""
        progress = progress or NoProgress()
        auth = Authenticator(parse_api_keys(settings.api_keys))
        store, encoder, follower = prepare(settings, progress=progress)
        configure(settings.mlflow_tracking_uri, settings.home / "mlartifacts")
        version = champion_version()
        if version is None:
            raise NoChampionError("no champion model registered: run `casematch bootstrap` first")
        # posts to route are encoded without the disk cache: a new post's vector is seldom asked for again
        uncached = encoder.inner if isinstance(encoder, CachingEncoder) else encoder
        queries = QueryBatcher(uncached, max_batch=settings.route_batch)
        state = _restore_state(store, follower, load_bundle(version), encoder.dim, queries)
        watcher = ChampionWatcher(
            lambda new, _: state.engine.swap_bundle(new), interval_seconds=settings.model_poll_seconds
        )
        watcher.version = version
        if watch:
            follower.follow(settings.follow_seconds)
            watcher.start()
        limiter = RateLimiter(settings.rate_limit_per_minute)
        return cls(settings, auth, store, encoder, Deidentifier(), follower, state, watcher, limiter)

    def case_vector(self, title: str, text: str) -> npt.NDArray[np.float32]:
        return np.asarray(self.encoder.encode_documents([post_text(title, text)])[0], dtype=np.float32)

    def forget_embedding(self, title: str, text: str) -> None:
        """Drop a post's vector from the encoder's disk cache, if it has one (erasure)."""
        forget = getattr(self.encoder, "forget", None)
        if forget is not None:
            forget([post_text(title, text)])

    def close(self) -> None:
        """Stop following the store and the champion, save the index snapshot, close the store (once)."""
        if self._closed:
            return
        self._closed = True
        self.watcher.stop()
        self.follower.stop()
        self.follower.save_snapshot()
        self.store.close()
        logger.info("runtime closed: index snapshot saved")


def prepare(
    settings: Settings, *, progress: Progress | None = None, seed: bool = True
) -> tuple[CaseStore, Encoder, StoreFollower]:
    """The store migrated (and seeded when it never held data), the encoder loaded and the index
    caught up and snapshotted. `casematch serve --workers N` runs this once before the workers
    start, so each of them starts from a fresh snapshot."""
    progress = progress or NoProgress()
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.database_url)
    store = CaseStore.from_url(settings.database_url)
    if seed and store.head_seq() == 0 and settings.seed_world:
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

    follower = StoreFollower.open(store, matcher_for, settings.index_dir_for(encoder.fingerprint.token))
    progress.stage("indexing cases", max(store.head_seq() - follower.watermark, 0))
    if follower.catch_up(on_batch=progress.advance):
        follower.save_snapshot()
    return store, encoder, follower


def _restore_state(
    store: CaseStore, follower: StoreFollower, bundle: RoutingBundle, dim: int, queries: QueryBatcher
) -> LiveRoutingState:
    """Doctor profiles, activity, the answer book and availability as of the follower's watermark,
    attached to the follower, which carries them on from there.

    From the state saved beside the index snapshot when there is one (then the feed's answers
    since it are applied), else by replaying every answer up to the watermark in time order, with
    case vectors from the index (nothing is encoded again)."""
    doctors = store.list_doctors()
    profiles = [doctor_profile(d) for d in doctors]
    unavailable = {d.doctor_id for d in doctors if not d.available}
    saved = follower.read_snapshot(lambda folder: load_saved_state(folder, profiles, dim))
    if saved is not None and saved.watermark > follower.watermark:
        logger.warning(
            "routing state snapshot is ahead of the index (%d > %d); replaying",
            saved.watermark,
            follower.watermark,
        )
        saved = None
    activity = saved.activity if saved is not None else DoctorActivity(profiles, dim)
    book = saved.answers if saved is not None else AnswerBook()
    engine = RoutingEngine(bundle, follower.matcher, activity, book.answerers_of, queries=queries)
    state = LiveRoutingState(engine, book, unavailable)
    if saved is None:
        index = follower.matcher.index
        answers = store.all_answers(up_to_seq=follower.watermark)
        while page := list(islice(answers, REBUILD_PAGE)):
            state.apply_answers(page, index.vectors(list(dict.fromkeys(a.answer.case_id for a in page))))
        follower.attach(state)
    else:
        follower.attach(state)
        follower.catch_up_state(saved.watermark)
    return state
