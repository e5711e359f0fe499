"""The synthetic world as a `Source`: its tables as typed records, posts de-identified as served.

The world's posts carry planted identifiers on purpose; the platform never stores a post before
de-identifying it, so neither does training on the world (`deidentify=None` keeps raw posts, for
tests that look at the planted identifiers themselves). Its split is the world's own months
(`ml.synthetic.splits`): January-August train, September-October dev, November-December test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from ml.data.records import (
    AnswerRecord,
    CaseRecord,
    CaseTruth,
    DoctorRecord,
    PlatformData,
    ResolutionRecord,
)
from ml.data.splits import TimeSplit
from ml.hashing import sha256_files
from ml.privacy.batch import DeidentifiedCache, Deidentify, deidentify_posts
from ml.progress import NoProgress, Progress
from ml.synthetic.splits import DEV_START, TEST_START
from ml.synthetic.world import TABLES

WORLD_SPLIT = TimeSplit(DEV_START, TEST_START)
RAW = "raw"  # `deidentify=RAW`: keep the planted identifiers


class SyntheticWorld:
    """Reads a written world (a folder of Parquet tables, `ml.synthetic.world.write_world`)."""

    split = WORLD_SPLIT

    def __init__(
        self,
        world_dir: Path,
        *,
        deidentify: Deidentify | str | None = None,
        cache: DeidentifiedCache | None = None,
        workers: int = 0,
        progress: Progress | None = None,
    ) -> None:
        """`deidentify`: None for the real de-identifier (over `workers` processes), a function, or RAW."""
        self.world_dir = world_dir
        self._deidentify = deidentify
        self._cache = cache
        self._workers = workers
        self._progress = progress or NoProgress()

    def data_hash(self) -> str:
        return sha256_files(sorted(self.world_dir.glob("*.parquet")))[:16]

    def read(self) -> PlatformData:
        raw = [
            CaseRecord(str(i), str(t), str(b), str(lang), str(a), at, str(c), age, sex)  # type: ignore[arg-type]
            for i, t, b, lang, a, at, c, age, sex in self._rows(
                "cases",
                "case_id", "title", "body", "language", "author_id", "created_at", "country",
                "patient_age", "patient_sex",
            )
        ]  # fmt: skip
        return PlatformData(
            cases=tuple(self._cleaned(raw)),
            answers=tuple(
                AnswerRecord(str(i), str(c), str(d), at, bool(ok))  # type: ignore[arg-type]
                for i, c, d, at, ok in self._rows(
                    "answers", "answer_id", "case_id", "doctor_id", "created_at", "accepted"
                )
            ),
            resolutions=tuple(
                ResolutionRecord(str(c), str(dx), tuple(codes), at)  # type: ignore[arg-type]
                for c, dx, codes, at in self._rows(
                    "resolutions", "case_id", "diagnosis", "specialties", "resolved_at"
                )
            ),
            doctors=tuple(
                DoctorRecord(str(d), tuple(s), tuple(i), tuple(lang), str(c), str(tz))  # type: ignore[arg-type]
                for d, s, i, lang, c, tz in self._rows(
                    "doctors", "doctor_id", "specialties", "interests", "languages", "country", "timezone"
                )
            ),
            truth={
                str(case): CaseTruth(str(condition), int(presentation), str(level))  # type: ignore[call-overload]
                for case, condition, presentation, level in self._rows(
                    "case_labels", "case_id", "condition_id", "presentation_index", "urgency"
                )
            },
            provenance={
                "source": "synthetic",
                "world": self.world_dir.name,
                "data_hash": self.data_hash(),
                "deidentified": "no" if self._deidentify == RAW else "yes",
            },
        )

    def _rows(self, table: str, *columns: str) -> Iterator[tuple[object, ...]]:
        if table not in TABLES:
            raise ValueError(f"table {table!r} not in {TABLES}")
        data = pq.read_table(self.world_dir / f"{table}.parquet", columns=list(columns))
        yield from zip(*(data.column(name).to_pylist() for name in columns), strict=True)

    def _cleaned(self, cases: list[CaseRecord]) -> list[CaseRecord]:
        if self._deidentify == RAW:
            return cases
        function = self._deidentify if callable(self._deidentify) else None
        cleaned = deidentify_posts(
            [(c.title, c.text, c.language) for c in cases],
            function,
            self._progress,
            workers=self._workers,
            cache=self._cache,
        )
        return [
            CaseRecord(
                c.case_id, title, text, c.language, c.author_id, c.created_at, c.country,
                c.patient_age, c.patient_sex,
            )
            for c, (title, text) in zip(cases, cleaned, strict=True)
        ]  # fmt: skip
