"""Keep the similar-cases index caught up with the case store, the source of truth.

The index remembers the store's change number (`seq`) it has applied up to: its watermark.
Catching up applies every later erasure and case change, in order. The same call serves
start-up (from the last snapshot, or from zero) and every live write (the API commits to the
store, then catches up), so a crash between the two is repaired by the next start: nothing the
store acknowledged can be missing from results.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from ml.embeddings.base import FingerprintMismatchError
from ml.index import CaseIndex, CaseMeta, IndexCorruptError
from ml.matching import CaseText, Matcher, post_text
from service.store.records import StoredCase
from service.store.repository import CaseStore

logger = logging.getLogger("casematch.index")
WATERMARK_KEY = "store_seq"  # saved in the index manifest


class IndexSync:
    def __init__(self, store: CaseStore, matcher: Matcher, snapshot_dir: Path) -> None:
        self.store = store
        self.matcher = matcher
        self.snapshot_dir = snapshot_dir
        self._lock = threading.Lock()  # one catch-up at a time keeps changes in seq order

    @property
    def watermark(self) -> int:
        return int(self.matcher.index.watermark.get(WATERMARK_KEY, 0))

    @classmethod
    def open(
        cls, store: CaseStore, matcher_for: Callable[[CaseIndex | None], Matcher], snapshot_dir: Path
    ) -> IndexSync:
        """Start from the snapshot in `snapshot_dir` when it is usable, else from an empty index."""
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
            logger.warning("index snapshot is ahead of the store (another or a restored store); rebuilding")
            index = None
        return cls(store, matcher_for(index), snapshot_dir)

    def catch_up(self, *, on_batch: Callable[[int], None] | None = None) -> int:
        """Apply every store change after the watermark; return how many changes were applied."""
        applied = 0
        with self._lock:
            while True:
                batch = self.store.changes_since(self.watermark)
                if batch.erasures:
                    self.matcher.remove([e.case_id for e in batch.erasures])
                if batch.cases:
                    self.matcher.add([_indexed(case) for case in batch.cases])
                self.matcher.index.watermark[WATERMARK_KEY] = batch.watermark
                applied += len(batch.erasures) + len(batch.cases)
                if on_batch is not None:
                    on_batch(len(batch.erasures) + len(batch.cases))
                if batch.complete:
                    return applied

    def save_snapshot(self) -> None:
        with self._lock:
            self.matcher.index.save(self.snapshot_dir)


def _indexed(case: StoredCase) -> CaseText:
    specialties = case.resolution.specialties if case.resolution is not None else ()
    return CaseText(
        case.case_id,
        post_text(case.title, case.text),
        CaseMeta(resolved=case.resolved, language=case.language, specialties=tuple(specialties)),
    )
