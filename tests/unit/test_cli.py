import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def _said(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


COMMANDS = ["synth", "kb", "settings", "index", "search", "train", "promote", "bootstrap", "serve"]


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_every_command_explains_itself(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_synth_writes_a_world_and_keeps_it_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    args = ["synth", "--name", "tiny", "--cases", "120", "--doctors", "40", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"]["cases"] == 120 and manifest["rows"]["doctors"] == 40

    same = runner.invoke(app, args)  # e.g. a second `make run`
    assert same.exit_code == 0 and "up to date" in _said(same.output)

    different = runner.invoke(app, [*args, "--seed", "5"])
    assert different.exit_code == 1 and "--force" in _said(different.output)
    assert json.loads((out / "manifest.json").read_text()) == manifest, "refusing must not touch the world"

    (out / "cases.parquet").write_bytes(b"corrupted")  # same options, stale or damaged: made again
    rerun = runner.invoke(app, args)
    assert rerun.exit_code == 0 and "out of date" in _said(rerun.output)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert runner.invoke(app, [*args, "--seed", "5", "--force"]).exit_code == 0


def test_synth_rejects_bad_sizes_and_names() -> None:
    result = runner.invoke(app, ["synth", "--cases", "0"])
    assert result.exit_code == 2
    assert "--cases" in result.output
    escape = runner.invoke(app, ["synth", "--name", "../escape"])
    assert escape.exit_code == 2 and "name" in _said(escape.output)


def test_kb_reports_a_broken_file_with_its_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: x\n  name_en: [unclosed\n")
    result = runner.invoke(app, ["kb", str(bad)])
    assert result.exit_code == 2
    assert "not valid YAML" in result.output


def test_kb_prints_coverage_of_the_real_knowledge_base() -> None:
    result = runner.invoke(app, ["kb"])
    assert result.exit_code == 0, result.output
    assert "pediatric_pulmonology" in result.output
    assert "specialties with no primary condition: none" in result.output


def test_train_explains_a_config_file_it_cannot_use(tmp_path: Path) -> None:
    listing = tmp_path / "list.yaml"
    listing.write_text("- specialty\n- doctors\n")
    result = runner.invoke(app, ["train", "--world", "sample", "--config", str(listing)])
    assert result.exit_code == 2 and "mapping of TrainingConfig fields" in _said(result.output)
    missing = runner.invoke(app, ["train", "--world", "sample", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "training config" in _said(missing.output)
