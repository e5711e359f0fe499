"""Follow the MLflow `champion` alias: load the bundle behind it and hand it to the engine.

Checked at start-up, every `interval_seconds` in a background thread, and on demand
(`POST /v1/admin/reload`). A version that fails to load is logged and skipped; the service keeps
serving the one it has.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ml.models.bundle import RoutingBundle
from ml.registry import champion_version, load_bundle

logger = logging.getLogger("casematch.champion")


class ChampionWatcher:
    def __init__(
        self, on_new: Callable[[RoutingBundle, int], None], *, interval_seconds: float = 30.0
    ) -> None:
        self._on_new = on_new
        self._interval = interval_seconds
        self._lock = threading.Lock()  # one check at a time: a reload request and the timer may race
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.version: int | None = None

    def check(self) -> int | None:
        """Swap to the champion if it changed; return the version being served."""
        with self._lock:
            latest = champion_version()
            if latest is None or latest == self.version:
                return self.version
            try:
                bundle = load_bundle(latest)
                self._on_new(bundle, latest)
            except Exception:
                logger.exception(
                    "could not switch to case-router version %s; still serving %s", latest, self.version
                )
                return self.version
            logger.info("serving case-router version %s (was %s)", latest, self.version)
            self.version = latest
            return latest

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check()
