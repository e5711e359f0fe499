"""Fill an empty store with a synthetic world, de-identified on the way in (first start, demos).

The world's posts carry planted patient identifiers on purpose; like any post they are
de-identified before the store (and so the index) ever sees them. De-identification is the slow
part (tens of milliseconds a post), so posts are spread over worker processes, each with its own
`Deidentifier`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ml.progress import NoProgress, Progress
from ml.synthetic.world import read_table
from service.store.bulk import WorldRecords
from service.store.records import Answer, Doctor, NewCase, Resolution
from service.store.repository import CaseStore

Deidentify = Callable[[str, str], str]  # (text, language) -> text with identifiers replaced
CHUNK = 200  # posts per task: big enough to amortise the hand-over, small enough for a live progress bar

_worker_deidentifier: Deidentify | None = None


def world_records(
    world_dir: Path,
    deidentify: Deidentify | None = None,
    progress: Progress | None = None,
    *,
    workers: int = 0,
) -> WorldRecords:
    """The world as store records; posts go through `deidentify` (default: the real de-identifier
    in `workers` processes, 0 = one per core)."""
    progress = progress or NoProgress()
    cases = read_table(world_dir, "cases").to_pylist()
    progress.stage("de-identifying posts", len(cases))
    posts = [(c["title"], c["body"], c["language"]) for c in cases]
    cleaned = _deidentify_all(posts, deidentify, progress, workers or os.cpu_count() or 1)
    new_cases = [
        NewCase(
            case_id=case["case_id"],
            title=title,
            text=text,
            language=case["language"],
            country=case["country"],
            author_id=case["author_id"],
            patient_age=case["patient_age"],
            patient_sex=case["patient_sex"],
            created_at=case["created_at"],
        )
        for case, (title, text) in zip(cases, cleaned, strict=True)
    ]
    resolutions = {
        r["case_id"]: Resolution(r["diagnosis"], tuple(r["specialties"]), r["resolved_at"])
        for r in read_table(world_dir, "resolutions").to_pylist()
    }
    doctors = [
        Doctor(
            d["doctor_id"],
            tuple(d["specialties"]),
            tuple(d["languages"]),
            d["country"],
            d["timezone"],
            interests=tuple(d["interests"]),
        )
        for d in read_table(world_dir, "doctors").to_pylist()
    ]
    answers = [
        Answer(a["answer_id"], a["case_id"], a["doctor_id"], a["created_at"], a["accepted"])
        for a in read_table(world_dir, "answers").to_pylist()
    ]
    return WorldRecords(new_cases, resolutions, doctors, answers)


def seed_store(
    store: CaseStore,
    world_dir: Path,
    deidentify: Deidentify | None = None,
    progress: Progress | None = None,
    *,
    workers: int = 0,
) -> int:
    """Load the world into an empty store; return how many cases it now holds."""
    progress = progress or NoProgress()
    records = world_records(world_dir, deidentify, progress, workers=workers)
    rows = len(records.cases) + len(records.resolutions) + len(records.doctors) + len(records.answers)
    progress.stage("storing", rows)
    return store.load_world(records, on_rows=progress.advance)


def _deidentify_all(
    posts: Sequence[tuple[str, str, str]], deidentify: Deidentify | None, progress: Progress, workers: int
) -> list[tuple[str, str]]:
    chunks = [list(posts[start : start + CHUNK]) for start in range(0, len(posts), CHUNK)]
    if deidentify is not None or workers == 1:
        clean = deidentify or _real_deidentifier()
        out: list[tuple[str, str]] = []
        for chunk in chunks:
            out.extend((clean(title, language), clean(body, language)) for title, body, language in chunk)
            progress.advance(len(chunk))
        return out
    results: list[tuple[str, str]] = []
    with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker) as pool:
        for done in pool.map(_deidentify_chunk, chunks):  # map keeps the posts' order
            results.extend(done)
            progress.advance(len(done))
    return results


def _real_deidentifier() -> Deidentify:
    from ml.privacy.deid import Deidentifier

    engine = Deidentifier()
    return lambda text, language: engine.deidentify(text, language).text


def _start_worker() -> None:
    global _worker_deidentifier
    _worker_deidentifier = _real_deidentifier()


def _deidentify_chunk(chunk: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    assert _worker_deidentifier is not None, "worker started without its de-identifier"
    clean = _worker_deidentifier
    return [(clean(title, language), clean(body, language)) for title, body, language in chunk]
