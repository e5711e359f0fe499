"""A restart restores doctor activity and the answer book from their snapshot beside the index,
with the writes since caught up from the store, to exactly what replaying every answer builds."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from service.live_state import ACTIVITY_FILE, ANSWERS_FILE
from service.runtime import Runtime
from service.settings import Settings
from service.store.migrate import upgrade_to_head
from service.store.records import Answer
from service.store.repository import CaseStore
from tests.integration.conftest import registry_copy


def _start(env: pytest.MonkeyPatch, home: Path, trained_home: Path) -> Runtime:
    env.setenv("CASEMATCH_HOME", str(home))
    env.setenv("CASEMATCH_MLFLOW_TRACKING_URI", registry_copy(trained_home, home))
    return Runtime.start(Settings(), watch=False)


def _replayed(env: pytest.MonkeyPatch, home: Path, fresh: Path, trained_home: Path) -> Runtime:
    """A runtime on a home with no snapshot (the full replay), but `home`'s embedding cache: its
    index is built from the store without encoding every case again."""
    fresh.mkdir()
    shutil.copyfile(home / "embeddings.sqlite", fresh / "embeddings.sqlite")
    return _start(env, fresh, trained_home)


def _assert_same_state(restored: Runtime, replayed: Runtime, *, except_doctors: Sequence[str] = ()) -> None:
    """The same activity (but for `except_doctors`), answer book and availability."""
    a, b = restored.engine.activity, replayed.engine.activity
    assert a.slot == b.slot and a.doctors == b.doctors
    same = np.ones(len(a), dtype=bool)
    same[[a.slot[d] for d in except_doctors]] = False
    for name in ("answers", "accepted", "last_answer_hours"):
        np.testing.assert_array_equal(getattr(a, name)[same], getattr(b, name)[same], err_msg=name)
    np.testing.assert_allclose(a.log_response_sum[same], b.log_response_sum[same], rtol=1e-12)
    np.testing.assert_allclose(a.profile_sum[same], b.profile_sum[same], rtol=1e-5, atol=1e-6)
    now = datetime.now(UTC)
    a.advance(now)
    b.advance(now)
    for name, counts in a.window_counts.items():
        np.testing.assert_array_equal(counts[same], b.window_counts[name][same], err_msg=name)
    assert restored.state.answers._by_case == replayed.state.answers._by_case
    assert restored.state.unavailable() == replayed.state.unavailable()


@pytest.fixture
def url(tmp_path: Path, small_world_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty SQLite store the runtimes of a test share, seeded with the small world on first start."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_to_head(url)
    monkeypatch.setenv("CASEMATCH_DATABASE_URL", url)
    monkeypatch.setenv("CASEMATCH_SYNTHETIC_DIR", str(small_world_dir.parent))
    monkeypatch.setenv("CASEMATCH_SEED_WORLD", small_world_dir.name)
    return url


def test_a_restart_restores_the_saved_state_and_catches_up_what_came_after(
    url: str, tmp_path: Path, trained_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    first = _start(monkeypatch, home, trained_home)
    store: CaseStore = first.store
    cases = [c.case_id for c in store.changes_since(0, limit=50).cases]
    doctors = [d.doctor_id for d in store.list_doctors()]
    now = datetime.now(UTC)
    first.follower.catch_up()  # nothing to apply: the runtime holds everything up to the head
    first.close()  # saves the index and, beside it, the state at one watermark
    snapshot = first.follower.snapshot_dir
    assert (snapshot / ACTIVITY_FILE).exists() and (snapshot / ANSWERS_FILE).exists()

    # While no worker runs: answers (one later accepted), a doctor made unavailable, an erasure.
    store = CaseStore.from_url(url)
    store.add_answer(Answer("after-1", cases[0], doctors[0], now - timedelta(minutes=5)))
    store.add_answer(Answer("after-2", cases[1], doctors[1], now - timedelta(minutes=4)))
    store.add_answer(Answer("after-2", cases[1], doctors[1], now - timedelta(minutes=4), accepted=True))
    profile = store.get_doctor(doctors[2])
    store.put_doctor(replace(profile, available=False))
    erased = cases[3]
    erased_answerers = [a.doctor_id for a in store.answers_for_case(erased)]
    assert erased_answerers, "the small world's fourth case has answers"
    assert store.delete_case(erased)
    store.close()

    replays = 0
    original = CaseStore.all_answers

    def counting(self: CaseStore, **kwargs: object) -> object:
        nonlocal replays
        replays += 1
        return original(self, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(CaseStore, "all_answers", counting)
        restored = _start(monkeypatch, home, trained_home)
    assert replays == 0, "the restart replayed the answers instead of loading their snapshot"
    replayed = _replayed(monkeypatch, home, tmp_path / "fresh", trained_home)
    try:
        assert doctors[0] in restored.state.answers.answerers_of([cases[0]])[cases[0]]
        assert restored.state.answers.answerers_of([erased]) == {erased: []}
        assert doctors[2] in restored.state.unavailable()
        # Known gap: an erased case's answers stay counted in its answerers' activity until that
        # activity is rebuilt from the store (the replay never saw them), as on a running worker.
        _assert_same_state(restored, replayed, except_doctors=erased_answerers)
    finally:
        restored.close()
        replayed.close()


def test_a_damaged_state_snapshot_is_replayed_from_the_store(
    url: str,
    tmp_path: Path,
    trained_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    home = tmp_path / "home"
    first = _start(monkeypatch, home, trained_home)
    first.close()
    (first.follower.snapshot_dir / ANSWERS_FILE).write_bytes(b"not a zip file")
    with caplog.at_level(logging.WARNING, logger="casematch.live_state"):
        restored = _start(monkeypatch, home, trained_home)
    replayed = _replayed(monkeypatch, home, tmp_path / "fresh", trained_home)
    try:
        assert "routing state snapshot not used" in caplog.text
        _assert_same_state(restored, replayed)
    finally:
        restored.close()
        replayed.close()
