"""Fill an empty store with a synthetic world, de-identified on the way in (first start, demos).

The world's posts carry planted patient identifiers on purpose; like any post they are
de-identified before the store (and so the index) ever sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ml.progress import NoProgress, Progress
from ml.synthetic.world import read_table
from service.store.bulk import WorldRecords
from service.store.records import Answer, Doctor, NewCase, Resolution
from service.store.repository import CaseStore

Deidentify = Callable[[str, str], str]  # (text, language) -> text with identifiers replaced


def world_records(world_dir: Path, deidentify: Deidentify, progress: Progress | None = None) -> WorldRecords:
    progress = progress or NoProgress()
    cases = read_table(world_dir, "cases").to_pylist()
    progress.stage("de-identifying posts", len(cases))
    new_cases = []
    for case in cases:
        new_cases.append(
            NewCase(
                case_id=case["case_id"],
                title=deidentify(case["title"], case["language"]),
                text=deidentify(case["body"], case["language"]),
                language=case["language"],
                country=case["country"],
                author_id=case["author_id"],
                patient_age=case["patient_age"],
                patient_sex=case["patient_sex"],
                created_at=case["created_at"],
            )
        )
        progress.advance()
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
    store: CaseStore, world_dir: Path, deidentify: Deidentify, progress: Progress | None = None
) -> int:
    """Load the world into an empty store; return how many cases it now holds."""
    progress = progress or NoProgress()
    records = world_records(world_dir, deidentify, progress)
    rows = len(records.cases) + len(records.resolutions) + len(records.doctors) + len(records.answers)
    progress.stage("storing", rows)
    return store.load_world(records, on_rows=progress.advance)
