"""A committed ledger of test-split use: one row each time a bench script scores a test split.

A test split is only an honest estimate while nothing is chosen on it, and every look makes that
less true. The bench scripts therefore append a row to `bench/test_ledger.csv` whenever they score
test, and their reports say how often that script has done so. Rows dated before the ledger
existed were backfilled from git history (the `note` column says so).

    from test_ledger import record_test_use   # in a bench script: bench/ is on sys.path
    n = record_test_use("bench/quality.py", "test", {"codiesp.hit@3": 0.968})

Columns: `date` (UTC, ISO 8601), `commit` (`git rev-parse --short HEAD`, `+dirty` when the work
tree has changes other than this ledger and the bench reports), `script`, `split`, `headline`
(`key=value;key=value`) and `note`. Only test splits are ledgered: a dev or train run appends
nothing. Pure standard library.
"""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
LEDGER = BENCH_DIR / "test_ledger.csv"
COLUMNS = ("date", "commit", "script", "split", "headline", "note")
LEDGERED_SPLITS = frozenset({"test"})
_FORBIDDEN = frozenset("=;,\n\r")


def record_test_use(
    script: str,
    split: str,
    headline: Mapping[str, float],
    *,
    ledger: Path = LEDGER,
    note: str = "",
) -> int:
    """Append one row for this scoring of `split` by `script`; how many times it has been scored.

    The count includes this run. For a split that is not ledgered (dev, train) nothing is written
    and 0 is returned: only looks at test are counted.

    Args:
        script: the bench script as run from the project root, e.g. "bench/quality.py".
        split: the split that was scored ("test" is ledgered, anything else is not).
        headline: a few key figures of the run, e.g. {"codiesp.hit@3": 0.968}.
        ledger: the CSV file (created with its header if missing).
        note: free text, e.g. the options of the run.
    """
    if split not in LEDGERED_SPLITS:
        return 0
    row = {
        "date": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "commit": current_commit(ledger=ledger),
        "script": script,
        "split": split,
        "headline": format_headline(headline),
        "note": note,
    }
    ledger.parent.mkdir(parents=True, exist_ok=True)
    new_file = not ledger.exists() or ledger.stat().st_size == 0
    with ledger.open("a", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        if new_file:
            writer.writeheader()
        writer.writerow(row)
    return times_scored(script, split, ledger=ledger)


def times_scored(script: str, split: str, *, ledger: Path = LEDGER) -> int:
    """How many rows of the ledger record `script` scoring `split` (0 without a ledger)."""
    return sum(1 for row in read_ledger(ledger) if row["script"] == script and row["split"] == split)


def read_ledger(ledger: Path = LEDGER) -> list[dict[str, str]]:
    """Every row of the ledger, oldest first, as column -> text."""
    if not ledger.exists():
        return []
    with ledger.open(newline="", encoding="utf-8") as source:
        return list(csv.DictReader(source))


def format_headline(headline: Mapping[str, float]) -> str:
    """`key=value;key=value`, values with 3 decimals as the reports print them."""
    for key in headline:
        if not key or _FORBIDDEN & set(key):
            raise ValueError(f"headline key {key!r} is empty or holds one of '=;,' or a newline")
    return ";".join(f"{key}={value:.3f}" for key, value in headline.items())


def parse_headline(text: str) -> dict[str, float]:
    """The inverse of `format_headline`."""
    pairs = (item.split("=", 1) for item in text.split(";") if item)
    return {key: float(value) for key, value in pairs}


def usage_sentence(count: int, *, chosen: str = "models and settings were chosen on dev") -> str:
    """What a report says about its test split, given `record_test_use`'s count.

    `chosen` says where the decisions were made instead, in the script's own terms.
    """
    times = "once" if count == 1 else f"{count} times"
    return f"Test split: scored {times} by this script so far (`bench/test_ledger.csv`); {chosen}."


def current_commit(*, ledger: Path = LEDGER) -> str:
    """Short HEAD, with "+dirty" if the work tree differs from it; "unknown" outside git.

    The ledger itself and the bench reports (bench/*.md) do not make the tree dirty: the scripts
    write them, so every second run would otherwise be "dirty" because of the first.
    """
    try:
        sha = _git("rev-parse", "--short", "HEAD")
        excluded = [":(exclude)bench/*.md"]
        if ledger.resolve().is_relative_to(PROJECT_ROOT):
            excluded.append(f":(exclude){ledger.resolve().relative_to(PROJECT_ROOT).as_posix()}")
        changes = _git("status", "--porcelain", "--", ".", *excluded)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}+dirty" if changes else sha


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()
