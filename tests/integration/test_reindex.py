"""`casematch reindex`: every stored case re-embedded on Ray into the encoder's own snapshot, which a
serving process then loads as it is, without encoding anything again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ml.embeddings import load_encoder
from ml.matching import Matcher, post_text
from service.cli import app
from service.follower import StoreFollower
from service.settings import Settings
from service.store import CaseStore, NewCase, Resolution
from service.store.migrate import upgrade_to_head

pytestmark = pytest.mark.slow  # Ray's start-up and an encoder per actor: about a minute

POSTS = [
    ("Niño con tos y moldes bronquiales", "Expectora moldes ramificados tras una cirugía de Fontan.", "es"),
    ("Fever and rash after travel", "A 30-year-old back from Brazil with fever, rash and joint pain.", "en"),
    ("Dolor torácico en joven", "Varón de 25 años con dolor torácico pleurítico tras un cuadro viral.", "es"),
]


def test_reindex_builds_the_encoders_snapshot_on_ray_and_a_worker_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASEMATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = Settings()
    upgrade_to_head(settings.database_url)
    store = CaseStore.from_url(settings.database_url)
    for n, (title, text, language) in enumerate(POSTS):
        store.put_case(NewCase(f"r{n}", title, text, language, "ES", "a1"))
    store.resolve_case(
        "r0", Resolution("plastic bronchitis", ("pediatric_pulmonology",), store.get_case("r0").created_at)
    )
    store.delete_case("r2")  # erased before the re-embedding: never in the new snapshot

    result = CliRunner().invoke(app, ["reindex", "--encoder", "use", "--workers", "2"])
    assert result.exit_code == 0, result.output

    encoder = load_encoder("use")
    follower = StoreFollower.open(
        store,
        lambda index: Matcher(encoder, index) if index else Matcher.empty(encoder),
        settings.index_dir_for(encoder.fingerprint.token),
    )
    index = follower.matcher.index
    assert len(index) == 2 and "r2" not in index
    assert follower.watermark == store.head_seq() and follower.catch_up() == 0  # nothing left to encode
    expected = encoder.encode_documents([post_text(POSTS[0][0], POSTS[0][1])])[0]
    np.testing.assert_allclose(index.vectors(["r0"])["r0"], expected, atol=1e-5)
    store.close()


def test_reindex_says_when_ray_cannot_be_reached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMATCH_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["reindex", "--ray-address", "127.0.0.1:1"])
    assert result.exit_code == 2 and "127.0.0.1:1" in result.output
