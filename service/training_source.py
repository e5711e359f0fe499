"""Where `casematch train` reads its data: the synthetic world or the service's own store.

Both hand `ml` the same typed records (`ml.data.PlatformData`) and a time split: the world's own
months, or the store's oldest / next / newest shares of cases by posting time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ml.data import PlatformData, TimeSplit
from ml.data.synthetic import SyntheticWorld
from ml.paths import SAMPLE_WORLD_DIR
from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint
from ml.progress import Progress
from service.settings import Settings
from service.store.export import export_platform_data
from service.store.repository import CaseStore


def read_world(settings: Settings, world: str, progress: Progress) -> tuple[PlatformData, TimeSplit]:
    """The synthetic world, its posts de-identified as the store would keep them (cached in the home)."""
    return _read_synthetic(settings, settings.synthetic_dir / world, progress)


def read_store(settings: Settings, *, dev_share: float, test_share: float) -> tuple[PlatformData, TimeSplit]:
    """Everything the store at CASEMATCH_DATABASE_URL recorded, split by posting time.

    An empty store (cold start) puts nothing in any split: the models then learn from the real
    corpora and priors alone, and the run says which parts are untrained.
    """
    store = CaseStore.from_url(settings.database_url)
    try:
        data = export_platform_data(store, settings.database_url)
    finally:
        store.close()
    if not data.cases:
        now = datetime.now(UTC)
        return data, TimeSplit(now, now)
    split = TimeSplit.by_share([c.created_at for c in data.cases], dev=dev_share, test=test_share)
    return data, split


def urgency_prior(settings: Settings, progress: Progress) -> tuple[PlatformData, TimeSplit]:
    """Labelled urgency for a platform that records none and has no champion yet: the committed
    sample world (its posts de-identified)."""
    return _read_synthetic(settings, SAMPLE_WORLD_DIR, progress)


def _read_synthetic(
    settings: Settings, world_dir: Path, progress: Progress
) -> tuple[PlatformData, TimeSplit]:
    cache = DeidentifiedCache(settings.deidentified_cache, packaged_fingerprint())
    try:
        source = SyntheticWorld(world_dir, cache=cache, progress=progress)
        return source.read(), source.split
    finally:
        cache.close()
