"""`casematch index` and `casematch search` end to end, with the real encoder on a tiny world."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


@pytest.fixture
def tiny_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CASEMATCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CASEMATCH_SYNTHETIC_DIR", str(tmp_path / "worlds"))
    result = runner.invoke(app, ["synth", "--name", "tiny", "--cases", "150", "--doctors", "40"])
    assert result.exit_code == 0, result.output
    return tmp_path / "home"


def test_index_then_search(tiny_home: Path) -> None:
    missing = runner.invoke(app, ["search", "fiebre y tos"])
    assert missing.exit_code == 1 and "manifest.json missing" in " ".join(missing.output.split())

    built = runner.invoke(app, ["index", "--world", "tiny"])
    assert built.exit_code == 0, built.output
    assert len(list((tiny_home / "index").glob("*/manifest.json"))) == 1  # the encoder's own folder
    assert (tiny_home / "embeddings.sqlite").exists()

    found = runner.invoke(app, ["search", "niño con diarrea con sangre y plaquetas bajas", "--k", "3"])
    assert found.exit_code == 0, found.output
    assert found.output.count("│ c0") == 3

    wrong = runner.invoke(app, ["search", "x", "--mode", "fuzzy"])
    assert wrong.exit_code == 2 and "fuzzy" in wrong.output


def test_index_of_a_missing_world_says_how_to_make_one(tiny_home: Path) -> None:
    result = runner.invoke(app, ["index", "--world", "nowhere"])
    assert result.exit_code == 1 and "casematch synth" in " ".join(result.output.split())
