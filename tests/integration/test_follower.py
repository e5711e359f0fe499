"""The index follows the store: creates, resolutions and erasures, and recovery after a crash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ml.index import CaseIndex, SearchFilter
from ml.matching import Matcher
from service.follower import StoreFollower
from service.store.migrate import upgrade_to_head
from service.store.records import NewCase, Resolution
from service.store.repository import CaseStore
from tests.fakes import KeywordEncoder

ENCODER = KeywordEncoder({"casts": ["casts", "moldes"], "heart": ["chest", "torácico"], "skin": ["rash"]})
T0 = datetime(2025, 3, 1, tzinfo=UTC)
RESOLVED = SearchFilter(resolved_only=True)


def _case(case_id: str, text: str, language: str = "en") -> NewCase:
    return NewCase(case_id, f"case {case_id}", text, language, "ES", "d1", created_at=T0)


def _matcher(index: CaseIndex | None) -> Matcher:
    return Matcher(ENCODER, index) if index is not None else Matcher.empty(ENCODER)


def _ids(sync: StoreFollower, query: str, search_filter: SearchFilter | None = None) -> list[str]:
    return [h.case_id for h in sync.matcher.search(query, k=5, search_filter=search_filter)]


@pytest.fixture
def store(tmp_path: Path) -> CaseStore:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_to_head(url)
    return CaseStore.from_url(url)


def test_catch_up_applies_creates_resolutions_and_erasures(store: CaseStore, tmp_path: Path) -> None:
    store.put_case(_case("pb-en", "branching casts after Fontan"))
    store.put_case(_case("pb-es", "moldes ramificados tras Fontan", "es"))
    store.put_case(_case("mi", "crushing chest pain"))
    store.resolve_case("pb-en", Resolution("plastic bronchitis", ("pediatric_pulmonology",), T0))
    sync = StoreFollower.open(store, _matcher, tmp_path / "index")
    assert sync.catch_up() == 3  # each case once, in its latest state (pb-en already resolved)
    assert len(sync.matcher.index) == 3
    assert _ids(sync, "moldes ramificados", RESOLVED) == ["pb-en"]

    assert _ids(sync, "branching casts")[0] == "pb-en"  # found before its erasure: its absence below counts

    store.resolve_case("pb-es", Resolution("bronquitis plástica", ("pediatric_pulmonology",), T0))
    store.delete_case("pb-en")
    assert sync.catch_up() == 2
    assert _ids(sync, "branching casts", RESOLVED) == ["pb-es"]
    assert "pb-en" not in _ids(sync, "branching casts")
    assert sync.catch_up() == 0


def test_a_restart_recovers_what_the_store_acknowledged_after_the_snapshot(
    store: CaseStore, tmp_path: Path
) -> None:
    store.put_case(_case("mi", "crushing chest pain"))
    sync = StoreFollower.open(store, _matcher, tmp_path / "index")
    sync.catch_up()
    assert _ids(sync, "chest pain") == ["mi"]  # in the snapshot: the erasure below must undo that
    sync.save_snapshot()
    # acknowledged by the store, then the process died before the index saw it
    store.put_case(_case("rash", "new rash on the legs"))
    store.delete_case("mi")

    restarted = StoreFollower.open(store, _matcher, tmp_path / "index")
    assert restarted.watermark == sync.watermark > 0
    assert restarted.catch_up() == 2
    assert _ids(restarted, "rash") == ["rash"]
    assert "mi" not in _ids(restarted, "chest pain")


def test_a_snapshot_ahead_of_the_store_is_rebuilt(store: CaseStore, tmp_path: Path) -> None:
    store.put_case(_case("mi", "crushing chest pain"))
    sync = StoreFollower.open(store, _matcher, tmp_path / "index")
    sync.catch_up()
    sync.save_snapshot()
    beside = tmp_path / "index" / "doctor_activity.npz"  # state saved with that snapshot
    beside.write_bytes(b"saved with the index")
    url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade_to_head(url)
    other = CaseStore.from_url(url)  # e.g. a restored backup: its seqs start again
    rebuilt = StoreFollower.open(other, _matcher, tmp_path / "index")
    assert rebuilt.watermark == 0 and len(rebuilt.matcher.index) == 0
    assert not beside.exists(), "what was saved beside an unusable index must not be restored"


def test_a_snapshot_from_another_encoder_is_rebuilt_from_the_store(store: CaseStore, tmp_path: Path) -> None:
    store.put_case(_case("mi", "crushing chest pain"))
    other = KeywordEncoder({"only": ["chest"]})
    stale = StoreFollower(store, Matcher.empty(other), tmp_path / "index")
    stale.catch_up()
    stale.save_snapshot()
    fresh = StoreFollower.open(store, _matcher, tmp_path / "index")
    assert fresh.watermark == 0 and fresh.catch_up() == 1
    assert _ids(fresh, "chest pain") == ["mi"]
