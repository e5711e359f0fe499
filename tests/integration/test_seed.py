"""A synthetic world goes into an empty store in one go, de-identified, and only once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.paths import SAMPLE_WORLD_DIR
from ml.synthetic.world import read_table
from service.seed import seed_store
from service.store.bulk import StoreNotEmptyError
from service.store.migrate import upgrade_to_head
from service.store.repository import CaseStore


def _redact_planted(text: str, language: str) -> str:
    return text.replace("@", "[EMAIL]")  # a stand-in de-identifier: proves the hook is applied


def test_the_sample_world_loads_once_with_its_answers_and_resolutions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_to_head(url)
    store = CaseStore.from_url(url)
    assert seed_store(store, SAMPLE_WORLD_DIR, _redact_planted) == 2000
    changes = [c for batch in store.iter_changes(0) for c in batch.cases]
    assert len(changes) == 2000 and [c.seq for c in changes] == list(range(1, 2001))
    resolved = {r["case_id"] for r in read_table(SAMPLE_WORLD_DIR, "resolutions").to_pylist()}
    assert {c.case_id for c in changes if c.resolved} == resolved
    assert not any("@" in c.text for c in changes), "every post went through de-identification"
    assert len(store.list_doctors()) == 500
    assert sum(1 for _ in store.all_answers()) == read_table(SAMPLE_WORLD_DIR, "answers").num_rows
    with pytest.raises(StoreNotEmptyError):
        seed_store(store, SAMPLE_WORLD_DIR, _redact_planted)
