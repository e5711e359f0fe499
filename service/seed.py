"""Fill an empty store with a synthetic world, de-identified on the way in (first start, demos).

The world's posts carry planted patient identifiers on purpose; like any post they are
de-identified before the store (and so the index) ever sees them: `ml.data.synthetic` reads the
world as typed records with its posts cleaned (over one worker process per core, and through the
de-identified-post cache that training on the same world filled first).
"""

from __future__ import annotations

from pathlib import Path

from ml.data import PlatformData
from ml.data.synthetic import SyntheticWorld
from ml.privacy.batch import DeidentifiedCache, Deidentify
from ml.progress import NoProgress, Progress
from service.store.bulk import WorldRecords
from service.store.records import Answer, Doctor, NewCase, Resolution
from service.store.repository import CaseStore


def store_records(data: PlatformData) -> WorldRecords:
    """Typed platform records as the store's own, for one bulk load."""
    return WorldRecords(
        [
            NewCase(
                case_id=c.case_id,
                title=c.title,
                text=c.text,
                language=c.language,
                country=c.country,
                author_id=c.author_id,
                patient_age=c.patient_age,
                patient_sex=c.patient_sex,
                created_at=c.created_at,
            )
            for c in data.cases
        ],
        {r.case_id: Resolution(r.diagnosis, r.specialties, r.resolved_at) for r in data.resolutions},
        [
            Doctor(d.doctor_id, d.specialties, d.languages, d.country, d.timezone, interests=d.interests)
            for d in data.doctors
        ],
        [Answer(a.answer_id, a.case_id, a.doctor_id, a.created_at, a.accepted) for a in data.answers],
    )


def seed_store(
    store: CaseStore,
    world_dir: Path,
    deidentify: Deidentify | None = None,
    progress: Progress | None = None,
    *,
    workers: int = 0,
    cache: DeidentifiedCache | None = None,
) -> int:
    """Load the world into an empty store; return how many cases it now holds.

    `deidentify` defaults to the real de-identifier in `workers` processes (0 = one per core).
    """
    progress = progress or NoProgress()
    world = SyntheticWorld(world_dir, deidentify=deidentify, workers=workers, cache=cache, progress=progress)
    records = store_records(world.read())
    rows = len(records.cases) + len(records.resolutions) + len(records.doctors) + len(records.answers)
    progress.stage("storing", rows)
    store.load_world(records, on_rows=progress.advance)
    return len(records.cases)
