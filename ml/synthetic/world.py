"""Generate a synthetic world (doctors, cases, answers, resolutions) and write it as Parquet."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from ml.hashing import sha256_file
from ml.progress import NoProgress, Progress
from ml.synthetic.behaviour import BehaviourParams, BehaviourSimulator, DoctorState
from ml.synthetic.doctors import PEDIATRIC_AGE_MAX, Doctors, generate_doctors
from ml.synthetic.geography import COUNTRY_BY_CODE, TIMEZONES, spanish_locale, utc_offsets_by_day
from ml.synthetic.identifiers import IdentifierFactory
from ml.synthetic.knowledge import Condition, KnowledgeBase, Presentation
from ml.synthetic.splits import DEV_START
from ml.synthetic.writer import AuthorStyle, CaseWriter, Patient
from ml.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

GENERATOR_VERSION = "3"
RARITY_WEIGHT = {"common": 1.0, "uncommon": 0.5, "rare": 0.2, "very_rare": 0.08}
# Posting time of day (author's local hour): mostly working hours, some evening.
POSTING_BY_HOUR = np.array(
    [
        0.1,
        0.05,
        0.03,
        0.03,
        0.05,
        0.1,
        0.3,
        0.7,
        1.0,
        1.1,
        1.1,
        1.0,
        1.0,
        1.1,
        1.1,
        1.0,
        0.9,
        0.8,
        0.7,
        0.7,
        0.7,
        0.6,
        0.4,
        0.2,
    ]
)
TABLES = ("doctors", "doctors_latent", "cases", "case_labels", "identifiers", "answers", "resolutions")


class WorldConfig(BaseModel):
    """Everything that determines a world: the same config and knowledge base give the same bytes."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(default="world", pattern=r"^[A-Za-z0-9_-]+$")
    seed: int = 20251
    n_cases: int = Field(default=20_000, ge=1)
    n_doctors: int = Field(default=5_000, ge=20)
    start: date = date(2025, 1, 1)
    days: int = Field(default=365, ge=1)
    identifier_rate: float = Field(
        default=0.2, ge=0, le=1, description="share of cases with planted identifiers"
    )
    leak_rate: float = Field(default=0.07, ge=0, le=1, description="share of posts that name the diagnosis")
    spanish_from_bilingual: float = Field(
        default=0.25, ge=0, le=1, description="share of posts in Spanish by bilingual doctors outside ES/MX"
    )
    # The rare cases the product is demonstrated and tested with must exist in every world, in
    # both languages, however small: a world short of them gets some posts switched to them.
    featured_conditions: tuple[str, ...] = ("plastic_bronchitis_fontan", "hus_stec_o157")
    featured_minimum: int = Field(default=3, ge=0, description="posts per featured condition and language")


@dataclass(frozen=True)
class World:
    config: WorldConfig
    kb_fingerprint: str
    tables: dict[str, pa.Table]
    stats: dict[str, float]


@dataclass(frozen=True)
class _PostedCase:
    author: int
    posted_hours: float  # since the world's start, UTC
    language: str
    locale: str
    condition: int
    presentation: int
    patient: Patient


def generate_world(
    config: WorldConfig, kb: KnowledgeBase, taxonomy: Taxonomy, progress: Progress | None = None
) -> World:
    progress = progress or NoProgress()
    rng = np.random.default_rng(config.seed)
    start = datetime.combine(config.start, datetime.min.time(), tzinfo=UTC)
    conditions = kb.conditions

    progress.stage("doctors", 1)
    doctors, fits = generate_doctors(
        config.n_doctors, conditions=conditions, taxonomy=taxonomy, start=start, rng=rng
    )
    progress.advance()
    styles = _author_styles(doctors, rng)
    offsets = utc_offsets_by_day(start, config.days + 4)

    training_hours = (DEV_START - start).total_seconds() / 3600  # posts before this are training months
    posted = _post_cases(config, doctors, conditions, fits, offsets, rng, training_hours=training_hours)
    writer = CaseWriter(leak_rate=config.leak_rate)
    planter = IdentifierFactory()
    simulator = BehaviourSimulator(BehaviourParams(), doctor_state(doctors, fits, conditions), offsets, rng)

    # One column list per schema field; rows are appended in posting order.
    case_rows = _columns(CASES_SCHEMA)
    label_rows = _columns(LABELS_SCHEMA)
    span_rows = _columns(IDENTIFIERS_SCHEMA)
    answer_rows = _columns(ANSWERS_SCHEMA)
    resolution_rows = _columns(RESOLUTIONS_SCHEMA)
    first_answer_hours: list[float] = []

    progress.stage("cases", len(posted))
    for number, case in enumerate(posted, start=1):
        case_id = f"c{number:06d}"
        condition = conditions[case.condition]
        created_at = start + timedelta(hours=case.posted_hours)
        author_country = doctors.country[case.author]
        identifiers = None
        if rng.random() < config.identifier_rate:
            identifiers = planter.plant(
                country=author_country,
                language=case.language,
                patient_sex=case.patient.sex,
                patient_age=case.patient.age,
                created_at=created_at,
                rng=rng,
            )
        style = _style_for(styles, case.author, case.locale)
        written = writer.write(
            condition, condition.presentations[case.presentation], case.patient, style, rng, identifiers
        )
        _append(
            case_rows,
            case_id=case_id,
            title=written.title,
            body=written.body,
            language=case.language,
            locale=_display_locale(case.locale, author_country),
            country=author_country,
            author_id=doctors.doctor_id[case.author],
            patient_age=round(case.patient.age, 2),
            patient_sex=case.patient.sex,
            created_at=created_at,
        )
        _append(
            label_rows,
            case_id=case_id,
            condition_id=condition.id,
            diagnosis_en=condition.name_en,
            diagnosis_es=condition.name_es,
            primary_specialty=condition.primary_specialty,
            specialties=condition.specialties,
            urgency=condition.urgency,
            rarity=condition.rarity,
            presentation_index=case.presentation,
            states_diagnosis=written.states_diagnosis,
        )
        for span in written.body_spans:
            _append(
                span_rows,
                case_id=case_id,
                field="body",
                start=span.start,
                end=span.end,
                kind=span.kind,
                text=written.body[span.start : span.end],
            )

        outcome = simulator.simulate(
            posted_hours=case.posted_hours,
            condition=case.condition,
            language=case.language,
            author=case.author,
        )
        if outcome.answers:
            first_answer_hours.append(outcome.answers[0].hours_after_post)
        for k, answer in enumerate(outcome.answers):
            _append(
                answer_rows,
                answer_id=f"{case_id}-a{k + 1}",
                case_id=case_id,
                doctor_id=doctors.doctor_id[answer.doctor],
                created_at=created_at + timedelta(hours=answer.hours_after_post),
                accepted=k == outcome.accepted,
            )
        if outcome.accepted is not None and outcome.resolved_hours_after_post is not None:
            accepted = outcome.answers[outcome.accepted]
            _append(
                resolution_rows,
                case_id=case_id,
                resolved_at=created_at + timedelta(hours=outcome.resolved_hours_after_post),
                diagnosis=condition.name_es if case.language == "es" else condition.name_en,
                condition_id=condition.id,
                accepted_answer_id=f"{case_id}-a{outcome.accepted + 1}",
                accepted_doctor_id=doctors.doctor_id[accepted.doctor],
                specialties=condition.specialties,
            )
        progress.advance()

    tables = {
        "doctors": _doctors_table(doctors),
        "doctors_latent": _latent_table(doctors, styles),
        "cases": pa.table(case_rows, schema=CASES_SCHEMA),
        "case_labels": pa.table(label_rows, schema=LABELS_SCHEMA),
        "identifiers": pa.table(span_rows, schema=IDENTIFIERS_SCHEMA),
        "answers": pa.table(answer_rows, schema=ANSWERS_SCHEMA),
        "resolutions": pa.table(resolution_rows, schema=RESOLUTIONS_SCHEMA),
    }
    stats = _stats(tables, first_answer_hours, len(posted))
    return World(config=config, kb_fingerprint=kb.fingerprint, tables=tables, stats=stats)


def write_world(world: World, out_dir: Path) -> dict[str, str]:
    """Write every table as Parquet plus `manifest.json`; return the files' SHA-256 digests."""
    out_dir.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name in TABLES:
        path = out_dir / f"{name}.parquet"
        # Fixed writer options: the same world must give the same bytes.
        pq.write_table(world.tables[name], path, compression="zstd", write_statistics=False)
        digests[path.name] = sha256_file(path)
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "config": world.config.model_dump(mode="json"),
        "knowledge_base": world.kb_fingerprint,
        "rows": {name: world.tables[name].num_rows for name in TABLES},
        "stats": world.stats,
        "sha256": digests,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return digests


def read_manifest(world_dir: Path) -> dict[str, Any] | None:
    """The manifest of the world in `world_dir`, or None when there is none."""
    path = world_dir / "manifest.json"
    if not path.exists():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def is_up_to_date(world_dir: Path, config: WorldConfig, kb: KnowledgeBase) -> bool:
    """True when `world_dir` already holds exactly the world that `config` and `kb` would generate."""
    manifest = read_manifest(world_dir)
    if manifest is None:
        return False
    if (
        manifest.get("generator_version") != GENERATOR_VERSION
        or manifest.get("knowledge_base") != kb.fingerprint
        or manifest.get("config") != config.model_dump(mode="json")
    ):
        return False
    for filename, digest in manifest.get("sha256", {}).items():
        path = world_dir / filename
        if not path.exists() or sha256_file(path) != digest:
            return False
    return True


def read_table(world_dir: Path, name: str) -> pa.Table:
    """One table of a written world (see `TABLES`)."""
    if name not in TABLES:
        raise ValueError(f"table {name!r} not in {TABLES}")
    return pq.read_table(world_dir / f"{name}.parquet")


# --- posting: who posts what, when ---------------------------------------------------------------


def _post_cases(
    config: WorldConfig,
    doctors: Doctors,
    conditions: tuple[Condition, ...],
    fits: npt.NDArray[np.float32],
    offsets: npt.NDArray[np.float32],
    rng: np.random.Generator,
    *,
    training_hours: float,
) -> list[_PostedCase]:
    n = config.n_cases
    author_weights = doctors.post_activity / doctors.post_activity.sum()
    authors = rng.choice(len(doctors), size=n, p=author_weights)
    zone_index = {z: i for i, z in enumerate(TIMEZONES)}
    days = rng.integers(0, config.days, size=n)
    local_hours = rng.choice(24, size=n, p=POSTING_BY_HOUR / POSTING_BY_HOUR.sum()) + rng.random(n)
    zones = np.array([zone_index[doctors.timezone[a]] for a in authors])
    posted_hours = days * 24.0 + local_hours - offsets[zones, days]
    posted_hours = np.clip(posted_hours, 0.0, None)

    rarity = np.array([RARITY_WEIGHT[c.rarity] for c in conditions])
    pediatric = np.array([c.age_max <= PEDIATRIC_AGE_MAX for c in conditions])
    adult = np.array([c.age_min >= 16 for c in conditions])
    cases = []
    for i in range(n):
        author = int(authors[i])
        language, locale = _case_language(doctors, author, config, rng)
        # Pediatric doctors post children; others mostly adults; nobody posts much from their own field.
        treats_children = any(
            s == "pediatrics" or s.startswith(("pediatric_", "neonat")) for s in doctors.specialties[author]
        )
        weights = rarity * np.where(pediatric if treats_children else adult, 4.0, 1.0)
        weights = weights * np.where(fits[author] >= 1.0, 0.3, 1.0)
        condition_index = int(rng.choice(len(conditions), p=weights / weights.sum()))
        condition = conditions[condition_index]
        presentation = _choose_presentation(condition, locale, rng, hold_out=posted_hours[i] < training_hours)
        cases.append(
            _PostedCase(
                author,
                float(posted_hours[i]),
                language,
                locale,
                condition_index,
                presentation,
                _draw_patient(condition, condition.presentations[presentation], rng),
            )
        )
    _feature_conditions(cases, conditions, config, training_hours)
    cases.sort(key=lambda c: c.posted_hours)
    return cases


def _feature_conditions(
    cases: list[_PostedCase], conditions: tuple[Condition, ...], config: WorldConfig, training_hours: float
) -> None:
    """Switch some posts to the featured conditions until each has its minimum in each language.

    Uses its own random stream, so a world that already has enough is left exactly as drawn.
    """
    index_of = {c.id: i for i, c in enumerate(conditions)}
    unknown = [c for c in config.featured_conditions if c not in index_of]
    if unknown:
        raise ValueError(f"featured conditions {unknown} are not in the knowledge base")
    featured = {index_of[c] for c in config.featured_conditions}
    rng = np.random.default_rng([config.seed, 1])
    for condition_id in config.featured_conditions:
        target = index_of[condition_id]
        condition = conditions[target]
        for language in ("en", "es"):
            have = sum(c.condition == target and c.language == language for c in cases)
            switchable = [
                i for i, c in enumerate(cases) if c.language == language and c.condition not in featured
            ]
            needed = min(max(0, config.featured_minimum - have), len(switchable))
            for i in rng.choice(switchable, size=needed, replace=False) if needed else []:
                post = cases[int(i)]
                presentation = _choose_presentation(
                    condition, post.locale, rng, hold_out=post.posted_hours < training_hours
                )
                patient = _draw_patient(condition, condition.presentations[presentation], rng)
                cases[int(i)] = replace(post, condition=target, presentation=presentation, patient=patient)


def _case_language(
    doctors: Doctors, author: int, config: WorldConfig, rng: np.random.Generator
) -> tuple[str, str]:
    country = COUNTRY_BY_CODE[doctors.country[author]]
    if country.language == "es":
        return "es", spanish_locale(country.code)
    if "es" in doctors.languages[author] and rng.random() < config.spanish_from_bilingual:
        return "es", "es-MX"  # Spanish-speaking doctors in the US/Canada write Latin American Spanish
    return "en", "en"


def _choose_presentation(
    condition: Condition, locale: str, rng: np.random.Generator, *, hold_out: bool
) -> int:
    """A presentation in the author's locale; a Spanish author now and then uses the other Spanish one.

    With `hold_out` (training months), a locale's last presentation is kept back when the locale
    has another one: dev and test months then hold posts written in a way no training post was,
    which is what a router meets in the real world.
    """
    own = [i for i, p in enumerate(condition.presentations) if p.locale == locale]
    if locale.startswith("es") and rng.random() < 0.2:
        own = [
            i
            for i, p in enumerate(condition.presentations)
            if p.locale.startswith("es") and p.locale != locale
        ]
    if hold_out and len(own) > 1:
        own = own[:-1]
    return own[int(rng.integers(len(own)))]


def _draw_patient(condition: Condition, presentation: Presentation, rng: np.random.Generator) -> Patient:
    """Age and sex within the condition's band, narrowed where the presentation's wording needs it."""
    low = presentation.age_min if presentation.age_min is not None else condition.age_min
    high = presentation.age_max if presentation.age_max is not None else condition.age_max
    age = float(rng.uniform(low, max(low, high)))
    sex = presentation.sex or ("M" if rng.random() < condition.male_fraction else "F")
    return Patient(age=age, sex=sex)


def _display_locale(locale: str, country: str) -> str:
    return f"en-{country}" if locale == "en" else locale


# --- authors' writing styles ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Styles:
    shorthand_rate: npt.NDArray[np.float64]
    typo_rate: npt.NDArray[np.float64]
    drops_accents: npt.NDArray[np.bool_]
    asks_questions: npt.NDArray[np.float64]
    spelling: list[str]


def _author_styles(doctors: Doctors, rng: np.random.Generator) -> _Styles:
    n = len(doctors)
    careless = rng.random(n) < 0.3
    return _Styles(
        shorthand_rate=rng.beta(1.2, 2.5, size=n),
        typo_rate=np.where(careless, rng.uniform(0.005, 0.03, size=n), 0.0),
        drops_accents=rng.random(n) < 0.25,
        asks_questions=rng.uniform(0.3, 0.9, size=n),
        spelling=[COUNTRY_BY_CODE[c].english_spelling for c in doctors.country],
    )


def _style_for(styles: _Styles, author: int, locale: str) -> AuthorStyle:
    return AuthorStyle(
        locale=locale,
        spelling=styles.spelling[author],
        shorthand_rate=float(styles.shorthand_rate[author]),
        typo_rate=float(styles.typo_rate[author]),
        drops_accents=bool(styles.drops_accents[author]) and locale != "en",
        asks_questions=float(styles.asks_questions[author]),
    )


def doctor_state(
    doctors: Doctors, fits: npt.NDArray[np.float32], conditions: tuple[Condition, ...]
) -> DoctorState:
    """The behaviour model's view of the doctors (also rebuilt by ml.evaluation.replay)."""
    column = {c.id: j for j, c in enumerate(conditions)}
    favourite = np.zeros(fits.shape, dtype=bool)
    for i, ids in enumerate(doctors.favourite_conditions):
        favourite[i, [column[c] for c in ids]] = True
    zone_index = {z: i for i, z in enumerate(TIMEZONES)}
    return DoctorState(
        activity=doctors.answer_activity * doctors.speed,
        skill=doctors.skill,
        fit=fits,
        favourite=favourite,
        reads={lang: np.array([lang in langs for langs in doctors.languages]) for lang in ("en", "es")},
        zone=np.array([zone_index[z] for z in doctors.timezone], dtype=np.intp),
    )


# --- tables --------------------------------------------------------------------------------------

_TS = pa.timestamp("ms", tz="UTC")
_STRINGS = pa.list_(pa.string())
CASES_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("title", pa.string()),
        ("body", pa.string()),
        ("language", pa.string()),
        ("locale", pa.string()),
        ("country", pa.string()),
        ("author_id", pa.string()),
        ("patient_age", pa.float32()),
        ("patient_sex", pa.string()),
        ("created_at", _TS),
    ]
)
LABELS_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("condition_id", pa.string()),
        ("diagnosis_en", pa.string()),
        ("diagnosis_es", pa.string()),
        ("primary_specialty", pa.string()),
        ("specialties", _STRINGS),
        ("urgency", pa.string()),
        ("rarity", pa.string()),
        ("presentation_index", pa.int16()),
        ("states_diagnosis", pa.bool_()),
    ]
)
IDENTIFIERS_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("field", pa.string()),
        ("start", pa.int32()),
        ("end", pa.int32()),
        ("kind", pa.string()),
        ("text", pa.string()),
    ]
)
ANSWERS_SCHEMA = pa.schema(
    [
        ("answer_id", pa.string()),
        ("case_id", pa.string()),
        ("doctor_id", pa.string()),
        ("created_at", _TS),
        ("accepted", pa.bool_()),
    ]
)
RESOLUTIONS_SCHEMA = pa.schema(
    [
        ("case_id", pa.string()),
        ("resolved_at", _TS),
        ("diagnosis", pa.string()),
        ("condition_id", pa.string()),
        ("accepted_answer_id", pa.string()),
        ("accepted_doctor_id", pa.string()),
        ("specialties", _STRINGS),
    ]
)
DOCTORS_SCHEMA = pa.schema(
    [
        ("doctor_id", pa.string()),
        ("country", pa.string()),
        ("timezone", pa.string()),
        ("languages", _STRINGS),
        ("specialties", _STRINGS),
        ("interests", _STRINGS),
        ("joined_at", _TS),
    ]
)
LATENT_SCHEMA = pa.schema(
    [
        ("doctor_id", pa.string()),
        ("answer_activity", pa.float64()),
        ("post_activity", pa.float64()),
        ("speed", pa.float64()),
        ("skill", pa.float64()),
        ("favourite_conditions", _STRINGS),
        ("shorthand_rate", pa.float64()),
        ("typo_rate", pa.float64()),
        ("drops_accents", pa.bool_()),
    ]
)


def _columns(schema: pa.Schema) -> dict[str, list[object]]:
    return {name: [] for name in schema.names}


def _append(rows: dict[str, list[object]], **values: object) -> None:
    for key, value in values.items():
        rows[key].append(value)


def _doctors_table(doctors: Doctors) -> pa.Table:
    return pa.table(
        {
            "doctor_id": doctors.doctor_id,
            "country": doctors.country,
            "timezone": doctors.timezone,
            "languages": doctors.languages,
            "specialties": doctors.specialties,
            "interests": doctors.interests,
            "joined_at": doctors.joined_at,
        },
        schema=DOCTORS_SCHEMA,
    )


def _latent_table(doctors: Doctors, styles: _Styles) -> pa.Table:
    return pa.table(
        {
            "doctor_id": doctors.doctor_id,
            "answer_activity": doctors.answer_activity,
            "post_activity": doctors.post_activity,
            "speed": doctors.speed,
            "skill": doctors.skill,
            "favourite_conditions": doctors.favourite_conditions,
            "shorthand_rate": styles.shorthand_rate,
            "typo_rate": styles.typo_rate,
            "drops_accents": styles.drops_accents,
        },
        schema=LATENT_SCHEMA,
    )


def _stats(tables: dict[str, pa.Table], first_answer_hours: list[float], n_cases: int) -> dict[str, float]:
    cases = tables["cases"]
    resolutions = tables["resolutions"]
    created = dict(zip(cases["case_id"].to_pylist(), cases["created_at"].to_pylist(), strict=True))
    resolve_hours = [
        (resolved - created[cid]).total_seconds() / 3600
        for cid, resolved in zip(
            resolutions["case_id"].to_pylist(), resolutions["resolved_at"].to_pylist(), strict=True
        )
    ]
    languages = cases["language"].to_pylist()
    return {
        "cases": float(n_cases),
        "spanish_share": round(languages.count("es") / max(1, n_cases), 4),
        "answered_share": round(len(first_answer_hours) / max(1, n_cases), 4),
        "median_first_answer_hours": round(float(np.median(first_answer_hours)), 3)
        if first_answer_hours
        else -1.0,
        "resolved_share": round(resolutions.num_rows / max(1, n_cases), 4),
        "resolved_within_24h_share": round(sum(h <= 24 for h in resolve_hours) / max(1, n_cases), 4),
        "answers_per_case": round(tables["answers"].num_rows / max(1, n_cases), 3),
        "cases_with_identifiers": float(len(set(tables["identifiers"]["case_id"].to_pylist()))),
        "states_diagnosis_share": round(
            sum(tables["case_labels"]["states_diagnosis"].to_pylist()) / max(1, n_cases), 4
        ),
    }
