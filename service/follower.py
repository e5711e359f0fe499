"""Keep everything a route reads caught up with the case store, the source of truth.

The store numbers every change (`seq`): a case posted, changed or resolved, an erasure, an answer
given or accepted, a doctor's profile or availability. The follower remembers the seq it has
applied up to (its watermark, saved in the index snapshot) and applies every later change in
order: erasures and cases to the index, then doctors and answers to the live routing state.

The same call serves start-up (from the last snapshot, or from zero), every write this worker
takes (commit, then catch up: a client reads its own write), and a background thread that polls
the store's head, so a write taken by any other worker or machine reaches this one within a poll
interval. A crash between commit and catch-up is repaired by the next call: nothing the store
acknowledged can be missing from results.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from filelock import FileLock

from ml.embeddings.base import FingerprintMismatchError
from ml.index import CaseIndex, CaseMeta, IndexCorruptError
from ml.matching import CaseText, Matcher, post_text
from service.store.errors import StoreUnavailableError
from service.store.records import AnswerActivity, ChangeBatch, Doctor, StoredCase
from service.store.repository import CaseStore

logger = logging.getLogger("casematch.follower")
WATERMARK_KEY = "store_seq"  # saved in the index manifest
SNAPSHOT_LOCK = ".snapshot.lock"  # workers sharing a home take turns to write or read the snapshot
_T = TypeVar("_T")


class RoutingState(Protocol):
    """The live state beside the index that follows the feed (doctor activity, answers, availability)."""

    def apply_doctors(self, doctors: Sequence[Doctor]) -> None: ...

    def apply_answers(
        self, answers: Sequence[AnswerActivity], vectors: dict[str, npt.NDArray[np.float32]]
    ) -> None: ...

    def forget_cases(self, case_ids: Sequence[str]) -> None: ...

    def save(self, folder: Path, *, watermark: int) -> None: ...


class StoreFollower:
    def __init__(self, store: CaseStore, matcher: Matcher, snapshot_dir: Path) -> None:
        self.store = store
        self.matcher = matcher
        self.snapshot_dir = snapshot_dir
        self.state: RoutingState | None = None  # attached once rebuilt; until then only the index follows
        self._lock = threading.Lock()  # one catch-up at a time keeps changes in seq order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def watermark(self) -> int:
        return int(self.matcher.index.watermark.get(WATERMARK_KEY, 0))

    @classmethod
    def open(
        cls, store: CaseStore, matcher_for: Callable[[CaseIndex | None], Matcher], snapshot_dir: Path
    ) -> StoreFollower:
        """Start from the snapshot in `snapshot_dir` when it is usable, else from an empty index."""
        with _snapshot_lock(snapshot_dir):
            try:
                index = CaseIndex.load(
                    snapshot_dir, expected_fingerprint=matcher_for(None).encoder.fingerprint.token
                )
            except FileNotFoundError:
                index = None
            except (FingerprintMismatchError, IndexCorruptError) as exc:
                logger.warning("index snapshot not used (%s); rebuilding from the store", exc)
                index = None
            if index is not None and int(index.watermark.get(WATERMARK_KEY, 0)) > store.head_seq():
                logger.warning(
                    "index snapshot is ahead of the store (another or a restored store); rebuilding"
                )
                index = None
            if index is None:
                _discard(snapshot_dir)  # what was saved beside an unusable index (the routing state) goes too
        return cls(store, matcher_for(index), snapshot_dir)

    def attach(self, state: RoutingState) -> None:
        """Apply doctor and answer changes to `state` from now on; it must hold every change up to
        the current watermark (it was rebuilt from the store up to it)."""
        with self._lock:
            self.state = state

    def catch_up_state(self, since: int) -> int:
        """Bring the attached state, restored as of `since`, up to the index: apply the feed's
        erasures, doctors and answers after `since` (its cases are in the index already); return
        how many were applied. Each applies once however often it is seen, so reading a little
        past the watermark is harmless: the follower meets those changes again."""
        state = self.state
        if state is None:
            raise RuntimeError("attach the routing state before catching it up")
        applied = 0
        with self._lock:
            for batch in self.store.iter_changes(since):
                if batch.erasures:
                    state.forget_cases([e.case_id for e in batch.erasures])
                if batch.doctors:
                    state.apply_doctors(batch.doctors)
                if batch.answers:
                    case_ids = list(dict.fromkeys(a.answer.case_id for a in batch.answers))
                    state.apply_answers(batch.answers, self.matcher.index.vectors(case_ids))
                applied += len(batch.erasures) + len(batch.doctors) + len(batch.answers)
                if batch.watermark >= self.watermark:
                    break
        return applied

    def read_snapshot(self, read: Callable[[Path], _T]) -> _T:
        """`read(snapshot_dir)` while no other worker writes the snapshot."""
        with _snapshot_lock(self.snapshot_dir):
            return read(self.snapshot_dir)

    def catch_up(self, *, on_batch: Callable[[int], None] | None = None) -> int:
        """Apply every store change after the watermark; return how many changes were applied.

        `on_batch` is told how many seqs each batch moved the watermark by, so that a progress bar
        over `head_seq() - watermark` ends full even when a batch skips changes (doctors and
        answers, before the routing state is attached)."""
        applied = 0
        with self._lock:
            while True:
                before = self.watermark
                batch = self.store.changes_since(before, activity=self.state is not None)
                self._apply(batch)
                applied += len(batch.erasures) + len(batch.cases) + len(batch.doctors) + len(batch.answers)
                if on_batch is not None:
                    on_batch(max(self.watermark - before, 0))
                if batch.complete:
                    return applied

    def _apply(self, batch: ChangeBatch) -> None:
        # Erasures before cases (a case erased and posted again is newer than its erasure); doctors
        # before answers (an answer counts only for a doctor whose profile is known).
        if batch.erasures:
            erased = [e.case_id for e in batch.erasures]
            self.matcher.remove(erased)
            if self.state is not None:
                self.state.forget_cases(erased)
        if batch.cases:
            self.matcher.add([_indexed(case) for case in batch.cases])
        if self.state is not None:
            if batch.doctors:
                self.state.apply_doctors(batch.doctors)
            if batch.answers:
                case_ids = list(dict.fromkeys(a.answer.case_id for a in batch.answers))
                self.state.apply_answers(batch.answers, self.matcher.index.vectors(case_ids))
        self.matcher.index.watermark[WATERMARK_KEY] = batch.watermark

    def follow(self, interval_seconds: float) -> None:
        """Poll the store's head on a daemon thread and catch up whenever it moved."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._poll, args=(interval_seconds,), name="store-follower", daemon=True
        )
        self._thread.start()

    def _poll(self, interval_seconds: float) -> None:
        unavailable = False
        while not self._stop.wait(interval_seconds):
            try:
                if self.store.head_seq() > self.watermark:
                    self.catch_up()
                if unavailable:
                    logger.info("case store reachable again: following its changes")
                unavailable = False
            except StoreUnavailableError:
                if not unavailable:  # once per outage, not once per poll
                    logger.warning("case store unavailable: routes serve the last state until it is back")
                unavailable = True
            except Exception:  # the follower must outlive one bad batch; the next poll retries it
                logger.exception("applying store changes failed; retrying")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def save_snapshot(self) -> None:
        """Save the index and, once attached, the routing state, both at the same watermark."""
        with self._lock, _snapshot_lock(self.snapshot_dir):
            self.matcher.index.save(self.snapshot_dir)
            if self.state is not None:
                self.state.save(self.snapshot_dir, watermark=self.watermark)


def _discard(snapshot_dir: Path) -> None:
    if snapshot_dir.is_dir():
        for path in snapshot_dir.iterdir():
            if path.is_file():
                path.unlink()


def _snapshot_lock(snapshot_dir: Path) -> FileLock:
    snapshot_dir.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(snapshot_dir.parent / f"{snapshot_dir.name}{SNAPSHOT_LOCK}")


def _indexed(case: StoredCase) -> CaseText:
    specialties = case.resolution.specialties if case.resolution is not None else ()
    return CaseText(
        case.case_id,
        post_text(case.title, case.text),
        CaseMeta(resolved=case.resolved, language=case.language, specialties=tuple(specialties)),
    )
