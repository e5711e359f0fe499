"""Slot table of a case index: string case ids over int64 positions, metadata and tombstones.

Both retrieval channels store case number `slot` at FAISS/matrix position `slot`. A removed or
replaced case keeps its slot as a tombstone (never returned) until the index is compacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.index.growing import Growing
from ml.taxonomy import load_taxonomy

LANGUAGES = ("en", "es", "other")  # language codes are stored as small integers


@dataclass(frozen=True, slots=True)
class CaseMeta:
    """What search filters can ask about a case."""

    resolved: bool = False
    language: str = "en"
    specialties: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which cases a search may return; applied inside the search, before ranking."""

    resolved_only: bool = False
    language: str | None = None
    specialties: tuple[str, ...] = ()  # any of these
    exclude_ids: tuple[str, ...] = ()


def language_code(language: str) -> int:
    return LANGUAGES.index(language) if language in LANGUAGES else LANGUAGES.index("other")


def specialty_mask(codes: Sequence[str]) -> int:
    """The 63 taxonomy codes as bits of one int64 (bit i = the i-th code)."""
    taxonomy = load_taxonomy()
    mask = 0
    for code in codes:
        mask |= 1 << taxonomy.index(code)
    return mask


class SlotTable:
    """Case ids over slots, with metadata arrays that grow in place (appending is O(b) amortised)."""

    def __init__(
        self,
        case_ids: list[str] | None = None,
        *,
        live: npt.ArrayLike = (),
        resolved: npt.ArrayLike = (),
        language: npt.ArrayLike = (),
        specialties: npt.ArrayLike = (),
    ) -> None:
        self.case_ids: list[str] = case_ids if case_ids is not None else []
        self._live = Growing(bool, live)
        self._resolved = Growing(bool, resolved)
        self._language = Growing(np.int8, language)
        self._specialties = Growing(np.int64, specialties)
        self.slot_of: dict[str, int] = {  # live case id -> slot
            case_id: i for i, case_id in enumerate(self.case_ids) if self._live.values[i]
        }

    def __len__(self) -> int:
        return len(self.case_ids)

    @property
    def live_count(self) -> int:
        return len(self.slot_of)

    @property
    def live(self) -> npt.NDArray[np.bool_]:
        return self._live.values

    @property
    def resolved(self) -> npt.NDArray[np.bool_]:
        return self._resolved.values

    @property
    def language(self) -> npt.NDArray[np.int8]:
        return self._language.values

    @property
    def specialties(self) -> npt.NDArray[np.int64]:
        return self._specialties.values

    def append(self, case_ids: Sequence[str], metas: Sequence[CaseMeta]) -> npt.NDArray[np.int64]:
        """Give each case a new slot; return the new slots.

        The caller tombstones a case's old slot first (it also has to erase that slot's data).
        """
        live = [c for c in case_ids if c in self.slot_of]
        if live:
            raise ValueError(f"cases {live[:3]} still have a live slot; tombstone them first")
        start = len(self.case_ids)
        slots = np.arange(start, start + len(case_ids), dtype=np.int64)
        self.case_ids.extend(case_ids)
        self._live.extend(np.ones(len(case_ids), dtype=bool))
        self._resolved.extend([m.resolved for m in metas])
        self._language.extend([language_code(m.language) for m in metas])
        self._specialties.extend([specialty_mask(m.specialties) for m in metas])
        for case_id, slot in zip(case_ids, slots.tolist(), strict=True):
            self.slot_of[case_id] = slot
        return slots

    def tombstone(self, case_ids: Sequence[str]) -> list[int]:
        """Mark these cases removed; return the slots that were live."""
        slots = [self.slot_of.pop(c) for c in case_ids if c in self.slot_of]
        if slots:
            self.live[slots] = False
        return slots

    def live_slots(self, case_ids: Sequence[str]) -> list[int]:
        """The live slots of these cases (without changing anything)."""
        return [self.slot_of[c] for c in case_ids if c in self.slot_of]

    def update_meta(self, case_id: str, meta: CaseMeta) -> bool:
        """Change a live case's metadata in place (e.g. it was just resolved)."""
        slot = self.slot_of.get(case_id)
        if slot is None:
            return False
        self.resolved[slot] = meta.resolved
        self.language[slot] = language_code(meta.language)
        self.specialties[slot] = specialty_mask(meta.specialties)
        return True

    def nbytes(self) -> int:
        arrays = self._live.nbytes + self._resolved.nbytes + self._language.nbytes + self._specialties.nbytes
        return int(arrays + sum(len(c) + 60 for c in self.case_ids) * 2)  # ids held twice, ~60 B overhead

    def allowed(self, search_filter: SearchFilter) -> npt.NDArray[np.bool_]:
        """Boolean mask over slots: live and matching the filter."""
        mask = self.live.copy()
        if search_filter.resolved_only:
            mask &= self.resolved
        if search_filter.language is not None:
            mask &= self.language == language_code(search_filter.language)
        if search_filter.specialties:
            mask &= (self.specialties & specialty_mask(search_filter.specialties)) != 0
        for case_id in search_filter.exclude_ids:
            slot = self.slot_of.get(case_id)
            if slot is not None:
                mask[slot] = False
        return mask

    def subset(self, old_slots: npt.NDArray[np.int64]) -> SlotTable:
        """A table of these slots, in this order (a rebuild's new slot i is old slot old_slots[i])."""
        return SlotTable(
            [self.case_ids[i] for i in old_slots.tolist()],
            live=self.live[old_slots],
            resolved=self.resolved[old_slots],
            language=self.language[old_slots],
            specialties=self.specialties[old_slots],
        )

    def to_arrays(self) -> dict[str, Any]:
        return {
            "case_ids": np.array(self.case_ids, dtype=np.str_),
            "live": self.live,
            "resolved": self.resolved,
            "language": self.language,
            "specialties": self.specialties,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[np.generic]]) -> SlotTable:
        return cls(
            [str(c) for c in arrays["case_ids"]],
            live=np.asarray(arrays["live"], dtype=bool),
            resolved=np.asarray(arrays["resolved"], dtype=bool),
            language=np.asarray(arrays["language"], dtype=np.int8),
            specialties=np.asarray(arrays["specialties"], dtype=np.int64),
        )
