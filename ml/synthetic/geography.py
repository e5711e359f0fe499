"""Countries, languages and time zones of the doctors in the synthetic world."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    weight: float  # share of the network's doctors
    language: str  # the language its doctors post in
    second_language_rate: float  # share who also read/answer in the other language
    english_spelling: str  # "us" or "uk"; meaningless for Spanish-speaking countries
    timezones: tuple[tuple[str, float], ...]  # (IANA zone, share of the country's doctors)


# A US-heavy English network with a large Spanish-speaking minority (about 30% of posts).
COUNTRIES: tuple[Country, ...] = (
    Country(
        "US",
        0.34,
        "en",
        0.12,
        "us",
        (
            ("America/New_York", 0.45),
            ("America/Chicago", 0.30),
            ("America/Denver", 0.07),
            ("America/Los_Angeles", 0.18),
        ),
    ),
    Country("GB", 0.12, "en", 0.04, "uk", (("Europe/London", 1.0),)),
    Country(
        "CA",
        0.08,
        "en",
        0.05,
        "us",
        (
            ("America/Toronto", 0.55),
            ("America/Vancouver", 0.20),
            ("America/Edmonton", 0.12),
            ("America/Halifax", 0.08),
            ("America/Winnipeg", 0.05),
        ),
    ),
    Country(
        "AU",
        0.07,
        "en",
        0.03,
        "uk",
        (
            ("Australia/Sydney", 0.35),
            ("Australia/Melbourne", 0.30),
            ("Australia/Brisbane", 0.18),
            ("Australia/Perth", 0.10),
            ("Australia/Adelaide", 0.07),
        ),
    ),
    Country("ZA", 0.05, "en", 0.02, "uk", (("Africa/Johannesburg", 1.0),)),
    Country("IE", 0.03, "en", 0.04, "uk", (("Europe/Dublin", 1.0),)),
    Country("NZ", 0.02, "en", 0.03, "uk", (("Pacific/Auckland", 1.0),)),
    Country(
        "MX",
        0.15,
        "es",
        0.35,
        "us",
        (
            ("America/Mexico_City", 0.80),
            ("America/Monterrey", 0.10),
            ("America/Tijuana", 0.06),
            ("America/Cancun", 0.04),
        ),
    ),
    Country("ES", 0.14, "es", 0.40, "uk", (("Europe/Madrid", 0.95), ("Atlantic/Canary", 0.05))),
)

COUNTRY_BY_CODE = {c.code: c for c in COUNTRIES}

TIMEZONES: tuple[str, ...] = tuple(sorted({tz for c in COUNTRIES for tz, _ in c.timezones}))


def spanish_locale(country: str) -> str:
    """Which Spanish a doctor from `country` writes: Spain's, or Mexico's (the Americas)."""
    return "es-ES" if country == "ES" else "es-MX"


def utc_offsets_by_day(start: datetime, days: int) -> npt.NDArray[np.float32]:
    """UTC offset in hours of every zone in `TIMEZONES` at noon UTC of each day.

    Shape (len(TIMEZONES), days). A daily table keeps local-hour lookups vectorised and still
    follows daylight saving time (switches happen at night, so noon is representative).
    """
    offsets = np.zeros((len(TIMEZONES), days), dtype=np.float32)
    base = start.astimezone(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for zone_index, name in enumerate(TIMEZONES):
        zone = ZoneInfo(name)
        for day in range(days):
            offset = (base + timedelta(days=day)).astimezone(zone).utcoffset()
            assert offset is not None  # an IANA zone always has one
            offsets[zone_index, day] = offset.total_seconds() / 3600.0
    return offsets
