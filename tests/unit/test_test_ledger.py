"""bench/test_ledger.py: one row per scoring of a test split, counted per script and split."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def _load_ledger_module() -> ModuleType:
    # bench/ is a folder of scripts, not a package: load the module from its file.
    spec = importlib.util.spec_from_file_location("test_ledger", BENCH_DIR / "test_ledger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ledger_module = _load_ledger_module()
record_test_use = ledger_module.record_test_use
times_scored = ledger_module.times_scored


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.csv"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_appending_counts_per_script_and_split(ledger: Path) -> None:
    assert times_scored("bench/quality.py", "test", ledger=ledger) == 0
    assert record_test_use("bench/quality.py", "test", {"codiesp.hit@3": 0.968}, ledger=ledger) == 1
    assert record_test_use("bench/deid.py", "test", {"recall": 0.999}, ledger=ledger) == 1
    assert record_test_use("bench/quality.py", "test", {"codiesp.hit@3": 0.97}, ledger=ledger) == 2

    assert times_scored("bench/quality.py", "test", ledger=ledger) == 2
    assert times_scored("bench/deid.py", "test", ledger=ledger) == 1
    assert times_scored("bench/retrieval.py", "test", ledger=ledger) == 0


def test_header_is_written_once(ledger: Path) -> None:
    for _ in range(3):
        record_test_use("bench/quality.py", "test", {"a": 0.5}, ledger=ledger)

    lines = _lines(ledger)
    assert lines[0] == ",".join(ledger_module.COLUMNS)
    assert sum(line.startswith("date,") for line in lines) == 1
    assert len(lines) == 4


def test_a_dev_run_does_not_count(ledger: Path) -> None:
    record_test_use("bench/deid.py", "test", {"recall": 0.999}, ledger=ledger)

    assert record_test_use("bench/deid.py", "dev", {"recall": 0.98}, ledger=ledger) == 0
    assert record_test_use("bench/deid.py", "train", {"recall": 0.99}, ledger=ledger) == 0

    assert times_scored("bench/deid.py", "test", ledger=ledger) == 1
    assert times_scored("bench/deid.py", "dev", ledger=ledger) == 0
    assert len(_lines(ledger)) == 2


def test_a_dev_run_alone_creates_no_ledger(ledger: Path) -> None:
    record_test_use("bench/deid.py", "dev", {"recall": 0.98}, ledger=ledger)

    assert not ledger.exists()


def test_a_row_holds_date_commit_script_split_and_headline(ledger: Path) -> None:
    record_test_use(
        "bench/mixed_retrieval.py", "test", {"served.EN@5": 0.7551, "baseline.EN@5": 0.007}, ledger=ledger
    )

    with ledger.open(newline="") as source:
        (row,) = list(csv.DictReader(source))
    assert row["date"].endswith("Z") and row["date"][:2] == "20"
    assert row["commit"]  # a short sha (maybe "+dirty"), or "unknown" outside git
    assert (row["script"], row["split"]) == ("bench/mixed_retrieval.py", "test")
    assert row["headline"] == "served.EN@5=0.755;baseline.EN@5=0.007"
    assert ledger_module.parse_headline(row["headline"]) == {"served.EN@5": 0.755, "baseline.EN@5": 0.007}


def test_headline_keys_cannot_break_the_format(ledger: Path) -> None:
    with pytest.raises(ValueError, match="a=b"):
        record_test_use("bench/quality.py", "test", {"a=b": 1.0}, ledger=ledger)
    assert not ledger.exists()


def test_usage_sentence_counts_in_words() -> None:
    assert "scored once by this script" in ledger_module.usage_sentence(1)
    assert "scored 5 times by this script" in ledger_module.usage_sentence(5)
    assert ledger_module.usage_sentence(2, chosen="the weight was chosen on dev").endswith(
        "; the weight was chosen on dev."
    )


def test_the_committed_ledger_is_well_formed() -> None:
    rows = ledger_module.read_ledger()

    assert rows, "bench/test_ledger.csv holds the backfilled rows"
    for row in rows:
        assert tuple(row) == ledger_module.COLUMNS
        assert row["split"] == "test"
        assert (BENCH_DIR.parent / row["script"]).exists(), row["script"]
        assert ledger_module.parse_headline(row["headline"])
