"""Doctors of the synthetic network: who they are (observable) and how they behave (latent)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from ml.synthetic.geography import COUNTRIES
from ml.synthetic.knowledge import Condition
from ml.taxonomy import Taxonomy

# Relative head-count of each specialty on the network (default 1.0): generalists dominate.
SPECIALTY_HEADCOUNT: dict[str, float] = {
    "family_medicine": 9.0,
    "internal_medicine": 8.0,
    "emergency_medicine": 6.0,
    "pediatrics": 5.0,
    "general_surgery": 2.5,
    "obstetrics_gynecology": 2.5,
    "psychiatry": 2.5,
    "cardiology": 2.5,
    "anesthesiology": 2.5,
    "radiology": 2.0,
    "neurology": 1.8,
    "orthopedic_surgery": 2.0,
    "critical_care": 1.6,
    "gastroenterology": 1.5,
    "pulmonology": 1.5,
    "infectious_disease": 1.3,
    "geriatrics": 1.3,
    "dermatology": 1.5,
    "medical_oncology": 1.5,
    "nephrology": 1.2,
    "endocrinology": 1.2,
    "rheumatology": 1.0,
    "urology": 1.2,
    "ophthalmology": 1.2,
    "otolaryngology": 1.2,
    "hematology": 1.0,
}
GENERALISTS_ADULT = frozenset({"family_medicine", "internal_medicine", "emergency_medicine"})
GENERALISTS_CHILD = frozenset({"pediatrics", "family_medicine", "emergency_medicine"})
PEDIATRIC_AGE_MAX = 18.0

# Specialty fit of a doctor to a condition (the max over the doctor's specialties).
FIT_PRIMARY = 1.0
FIT_SECONDARY = 0.4
FIT_RELATED = 0.15  # parent or child of the condition's primary specialty in the taxonomy
FIT_GENERALIST = 0.08
FIT_OTHER = 0.01


@dataclass(frozen=True)
class Doctors:
    """Column arrays, one row per doctor. Latent fields drive behaviour and are never served."""

    doctor_id: list[str]
    country: list[str]
    timezone: list[str]
    languages: list[list[str]]
    specialties: list[list[str]]
    interests: list[list[str]]  # declared: specialty codes the doctor follows
    joined_at: list[datetime]
    # latent
    answer_activity: npt.NDArray[np.float64]  # heavy-tailed propensity to answer
    post_activity: npt.NDArray[np.float64]  # propensity to post cases
    speed: npt.NDArray[np.float64]  # multiplies the answer hazard
    skill: npt.NDArray[np.float64]  # chance-of-being-right factor, in (0, 1)
    favourite_conditions: list[list[str]]

    def __len__(self) -> int:
        return len(self.doctor_id)


def specialty_fit(doctor_specialties: list[str], condition: Condition, taxonomy: Taxonomy) -> float:
    """How well a doctor with these specialties fits a case of `condition` (see the FIT_ constants)."""
    primary = taxonomy.get(condition.primary_specialty)
    related = {primary.parent, *taxonomy.children(primary.code)}
    generalists = GENERALISTS_CHILD if condition.age_max <= PEDIATRIC_AGE_MAX else GENERALISTS_ADULT
    best = FIT_OTHER
    for code in doctor_specialties:
        if code == primary.code:
            best = max(best, FIT_PRIMARY)
        elif code in condition.secondary_specialties:
            best = max(best, FIT_SECONDARY)
        elif code in related:
            best = max(best, FIT_RELATED)
        elif code in generalists:
            best = max(best, FIT_GENERALIST)
    return best


def fit_matrix(
    specialties: list[list[str]], conditions: tuple[Condition, ...], taxonomy: Taxonomy
) -> npt.NDArray[np.float32]:
    """Specialty fit of every doctor to every condition, shape (doctors, conditions)."""
    combos = sorted({tuple(s) for s in specialties})
    by_combo = {
        combo: np.array([specialty_fit(list(combo), c, taxonomy) for c in conditions], dtype=np.float32)
        for combo in combos
    }
    return np.stack([by_combo[tuple(s)] for s in specialties])


def generate_doctors(
    n_doctors: int,
    *,
    conditions: tuple[Condition, ...],
    taxonomy: Taxonomy,
    start: datetime,
    rng: np.random.Generator,
) -> tuple[Doctors, npt.NDArray[np.float32]]:
    """The doctors, and their specialty fit to every condition (shape (doctors, conditions))."""
    codes = list(taxonomy.codes)
    headcount = np.array([SPECIALTY_HEADCOUNT.get(c, 0.7) for c in codes])
    headcount /= headcount.sum()
    country_weights = np.array([c.weight for c in COUNTRIES])
    country_index = rng.choice(len(COUNTRIES), size=n_doctors, p=country_weights / country_weights.sum())

    countries, zones, languages, specialties = [], [], [], []
    for i in range(n_doctors):
        country = COUNTRIES[country_index[i]]
        countries.append(country.code)
        zone_names = [z for z, _ in country.timezones]
        zone_weights = np.array([w for _, w in country.timezones])
        zones.append(zone_names[rng.choice(len(zone_names), p=zone_weights / zone_weights.sum())])
        other = "es" if country.language == "en" else "en"
        speaks = [country.language] + ([other] if rng.random() < country.second_language_rate else [])
        languages.append(sorted(speaks))
        specialties.append(_draw_specialties(codes, headcount, taxonomy, rng))

    # Heavy tails: a few doctors answer a large share of cases; a quarter mostly read.
    answer_activity = rng.lognormal(mean=0.0, sigma=1.2, size=n_doctors)
    answer_activity *= np.where(rng.random(n_doctors) < 0.25, 0.05, 1.0)
    is_generalist = np.array([bool(set(s) & (GENERALISTS_ADULT | GENERALISTS_CHILD)) for s in specialties])
    post_activity = rng.lognormal(mean=0.0, sigma=0.9, size=n_doctors) * np.where(is_generalist, 2.5, 1.0)
    speed = rng.lognormal(mean=0.0, sigma=0.5, size=n_doctors)
    skill = rng.beta(4.0, 3.0, size=n_doctors)

    fits = fit_matrix(specialties, conditions, taxonomy)
    favourites, interests = [], []
    for i in range(n_doctors):
        weights = fits[i].astype(np.float64) + 0.02  # mostly own field, now and then a pet topic
        picks = rng.choice(len(conditions), size=4, replace=False, p=weights / weights.sum())
        chosen = [conditions[j] for j in sorted(picks)]
        favourites.append([c.id for c in chosen])
        declared = list(dict.fromkeys([*specialties[i], *(c.primary_specialty for c in chosen)]))
        interests.append(declared)

    joined_days = rng.integers(30, 3 * 365, size=n_doctors)
    doctors = Doctors(
        doctor_id=[f"d{i + 1:05d}" for i in range(n_doctors)],
        country=countries,
        timezone=zones,
        languages=languages,
        specialties=specialties,
        interests=interests,
        joined_at=[start - timedelta(days=int(d)) for d in joined_days],
        answer_activity=answer_activity,
        post_activity=post_activity,
        speed=speed,
        skill=skill,
        favourite_conditions=favourites,
    )
    return doctors, fits


def _draw_specialties(
    codes: list[str], headcount: npt.NDArray[np.float64], taxonomy: Taxonomy, rng: np.random.Generator
) -> list[str]:
    first = codes[rng.choice(len(codes), p=headcount)]
    if rng.random() >= 0.3:
        return [first]
    parent = taxonomy.get(first).parent
    children = taxonomy.children(first)
    if parent and rng.random() < 0.5:
        second = parent
    elif children and rng.random() < 0.6:
        second = children[rng.integers(len(children))]
    else:
        second = codes[rng.choice(len(codes), p=headcount)]
    return [first] if second == first else [first, second]
