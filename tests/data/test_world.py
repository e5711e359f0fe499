"""The synthetic world: schema, determinism, mixes, leakage, identifiers and the behaviour model."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ml.paths import SAMPLE_WORLD_DIR as SAMPLE_DIR
from ml.synthetic import world as world_module
from ml.synthetic.geography import COUNTRIES
from ml.synthetic.knowledge import KnowledgeBase
from ml.synthetic.splits import split_of
from ml.synthetic.world import TABLES, World, WorldConfig, generate_world, read_table, write_world
from ml.taxonomy import Taxonomy

SCHEMAS = {
    "doctors": world_module.DOCTORS_SCHEMA,
    "doctors_latent": world_module.LATENT_SCHEMA,
    "cases": world_module.CASES_SCHEMA,
    "case_labels": world_module.LABELS_SCHEMA,
    "identifiers": world_module.IDENTIFIERS_SCHEMA,
    "answers": world_module.ANSWERS_SCHEMA,
    "resolutions": world_module.RESOLUTIONS_SCHEMA,
}


@pytest.fixture(scope="module")
def sample() -> dict[str, pa.Table]:
    if not (SAMPLE_DIR / "manifest.json").exists():
        pytest.fail(f"the committed sample is missing from {SAMPLE_DIR}; run `make sample`")
    return {name: read_table(SAMPLE_DIR, name) for name in TABLES}


def test_every_table_is_written_with_its_schema(small_world_dir: Path) -> None:
    for name in TABLES:
        table = read_table(small_world_dir, name)
        assert table.schema.equals(SCHEMAS[name]), name
    manifest = json.loads((small_world_dir / "manifest.json").read_text())
    assert manifest["rows"]["cases"] == 800
    assert manifest["config"]["seed"] == 11


def test_same_seed_gives_the_same_bytes(
    small_config: WorldConfig,
    small_world_dir: Path,
    knowledge_base: KnowledgeBase,
    taxonomy: Taxonomy,
    tmp_path: Path,
) -> None:
    again = write_world(generate_world(small_config, knowledge_base, taxonomy), tmp_path / "again")
    for name in TABLES:
        assert (tmp_path / "again" / f"{name}.parquet").read_bytes() == (
            small_world_dir / f"{name}.parquet"
        ).read_bytes(), name
    other = generate_world(small_config.model_copy(update={"seed": 12}), knowledge_base, taxonomy)
    assert (
        other.tables["cases"]["body"].to_pylist() != read_table(small_world_dir, "cases")["body"].to_pylist()
    )
    assert again == json.loads((small_world_dir / "manifest.json").read_text())["sha256"]


def test_committed_sample_regenerates_exactly(
    knowledge_base: KnowledgeBase, taxonomy: Taxonomy, tmp_path: Path
) -> None:
    manifest = json.loads((SAMPLE_DIR / "manifest.json").read_text())
    assert manifest["knowledge_base"] == knowledge_base.fingerprint, (
        "the knowledge base changed since the sample was made; run `make sample` and commit it"
    )
    config = WorldConfig.model_validate(manifest["config"])
    digests = write_world(generate_world(config, knowledge_base, taxonomy), tmp_path / "sample")
    assert digests == manifest["sha256"]


def test_doctors_come_from_the_nine_countries_in_a_realistic_mix(sample: dict[str, pa.Table]) -> None:
    countries = Counter(sample["doctors"]["country"].to_pylist())
    total = sum(countries.values())
    assert set(countries) == {c.code for c in COUNTRIES}
    for country in COUNTRIES:
        assert abs(countries[country.code] / total - country.weight) < 0.05, country.code
    doctors = sample["doctors"].to_pylist()
    for doctor in doctors:
        assert 1 <= len(doctor["specialties"]) <= 2
        spanish_country = doctor["country"] in ("ES", "MX")
        assert ("es" in doctor["languages"]) if spanish_country else ("en" in doctor["languages"])
    bilingual = sum(len(d["languages"]) == 2 for d in doctors) / len(doctors)
    assert 0.05 < bilingual < 0.3


def test_about_thirty_percent_of_cases_are_spanish_and_follow_the_author(sample: dict[str, pa.Table]) -> None:
    cases = sample["cases"].to_pylist()
    spanish = [c for c in cases if c["language"] == "es"]
    assert 0.25 <= len(spanish) / len(cases) <= 0.36
    languages = {d["doctor_id"]: d["languages"] for d in sample["doctors"].to_pylist()}
    for case in cases:
        if case["country"] in ("ES", "MX"):
            assert case["language"] == "es"
        assert case["language"] in languages[case["author_id"]]
    assert {c["locale"] for c in spanish} == {"es-ES", "es-MX"}


def test_spain_and_mexico_write_their_own_clinical_terms(sample: dict[str, pa.Table]) -> None:
    def share(locale: str, term: str) -> float:
        bodies = [c["body"].lower() for c in sample["cases"].to_pylist() if c["locale"] == locale]
        return sum(term in b for b in bodies) / len(bodies)

    assert share("es-ES", "tac") > 2 * share("es-MX", " tac")
    assert share("es-MX", "ultrasonido") + share("es-MX", "usg") > 2 * share("es-ES", "ultrasonido")
    assert share("es-ES", "ecograf") > 2 * share("es-MX", "ecograf")


def test_every_specialty_is_present(sample: dict[str, pa.Table], taxonomy: Taxonomy) -> None:
    doctor_specialties = {s for row in sample["doctors"]["specialties"].to_pylist() for s in row}
    case_specialties = {s for row in sample["case_labels"]["specialties"].to_pylist() for s in row}
    assert doctor_specialties == set(taxonomy.codes)
    assert case_specialties == set(taxonomy.codes)


def test_posts_look_like_posts(sample: dict[str, pa.Table], knowledge_base: KnowledgeBase) -> None:
    conditions = knowledge_base.by_id()
    labels = sample["case_labels"].to_pylist()
    for case, label in zip(sample["cases"].to_pylist(), labels, strict=True):
        words = len(case["body"].split())
        assert 60 <= words <= 250, (case["case_id"], words)
        assert 5 <= len(case["title"]) <= 200
        condition = conditions[label["condition_id"]]
        assert condition.age_min - 0.01 <= case["patient_age"] <= condition.age_max + 0.01
        assert case["patient_sex"] in ("M", "F")
        if condition.male_fraction == 0:
            assert case["patient_sex"] == "F"
    questions = sum(c["body"].rstrip().endswith("?") for c in sample["cases"].to_pylist())
    assert 0.2 < questions / len(labels) < 0.8
    created = sample["cases"]["created_at"].to_pylist()
    assert created == sorted(created)
    assert (max(created) - min(created)).days > 330


def test_the_diagnosis_is_rarely_stated(sample: dict[str, pa.Table], knowledge_base: KnowledgeBase) -> None:
    conditions = knowledge_base.by_id()
    cases = sample["cases"].to_pylist()
    resolved = set(sample["resolutions"]["case_id"].to_pylist())
    unresolved = [
        (case, label)
        for case, label in zip(cases, sample["case_labels"].to_pylist(), strict=True)
        if case["case_id"] not in resolved
    ]
    assert unresolved
    stated = [c for c, label in unresolved if conditions[label["condition_id"]].names_in(c["body"])]
    assert len(stated) / len(unresolved) <= 0.15
    titled = [
        c
        for c, label in zip(cases, sample["case_labels"].to_pylist(), strict=True)
        if conditions[label["condition_id"]].names_in(c["title"])
    ]
    assert not titled


def test_identifiers_are_planted_where_recorded(sample: dict[str, pa.Table]) -> None:
    bodies = dict(
        zip(sample["cases"]["case_id"].to_pylist(), sample["cases"]["body"].to_pylist(), strict=True)
    )
    spans = sample["identifiers"].to_pylist()
    for span in spans:
        assert bodies[span["case_id"]][span["start"] : span["end"]] == span["text"]
    with_identifiers = {s["case_id"] for s in spans}
    assert 0.15 <= len(with_identifiers) / len(bodies) <= 0.25
    assert {s["kind"] for s in spans} == {
        "NAME",
        "DATE_OF_BIRTH",
        "PHONE",
        "EMAIL",
        "ADDRESS",
        "RECORD_NUMBER",
        "NATIONAL_ID",
    }
    names = {s["text"] for s in spans if s["kind"] == "NAME"}
    clean = [b for cid, b in bodies.items() if cid not in with_identifiers]
    assert not any(name in body for name in names for body in clean[:300])


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def test_first_answers_and_resolutions_are_calibrated(sample: dict[str, pa.Table]) -> None:
    created = dict(
        zip(sample["cases"]["case_id"].to_pylist(), sample["cases"]["created_at"].to_pylist(), strict=True)
    )
    first: dict[str, float] = {}
    for answer in sample["answers"].to_pylist():
        delay = _hours(answer["created_at"], created[answer["case_id"]])
        assert delay >= 0
        first[answer["case_id"]] = min(delay, first.get(answer["case_id"], delay))
    assert 1.0 <= float(np.median(list(first.values()))) <= 2.0
    assert len(first) / len(created) >= 0.85
    within_day = [
        _hours(r["resolved_at"], created[r["case_id"]]) <= 24 for r in sample["resolutions"].to_pylist()
    ]
    assert sum(within_day) / len(created) >= 0.6, "most cases should resolve within 24 h"


def test_each_resolution_accepts_exactly_one_earlier_answer(sample: dict[str, pa.Table]) -> None:
    answers = {a["answer_id"]: a for a in sample["answers"].to_pylist()}
    accepted_per_case = Counter(a["case_id"] for a in answers.values() if a["accepted"])
    for resolution in sample["resolutions"].to_pylist():
        answer = answers[resolution["accepted_answer_id"]]
        assert answer["accepted"] and answer["case_id"] == resolution["case_id"]
        assert answer["doctor_id"] == resolution["accepted_doctor_id"]
        assert resolution["resolved_at"] >= answer["created_at"]
        assert accepted_per_case[resolution["case_id"]] == 1
    assert sum(accepted_per_case.values()) == sample["resolutions"].num_rows


def test_answers_carry_a_learnable_signal(sample: dict[str, pa.Table]) -> None:
    """Answerers fit the case's specialties and language far more than random doctors do."""
    doctors = {d["doctor_id"]: d for d in sample["doctors"].to_pylist()}
    labels = {row["case_id"]: row for row in sample["case_labels"].to_pylist()}
    languages = dict(
        zip(sample["cases"]["case_id"].to_pylist(), sample["cases"]["language"].to_pylist(), strict=True)
    )
    answers = sample["answers"].to_pylist()

    def fits(doctor: dict[str, object], case_id: str) -> bool:
        return bool(set(doctor["specialties"]) & set(labels[case_id]["specialties"]))  # type: ignore[call-overload]

    answered_fit = np.mean([fits(doctors[a["doctor_id"]], a["case_id"]) for a in answers])
    rng = np.random.default_rng(0)
    ids = list(doctors)
    random_fit = np.mean([fits(doctors[ids[rng.integers(len(ids))]], a["case_id"]) for a in answers])
    assert answered_fit > 3 * random_fit
    speaks = np.mean([languages[a["case_id"]] in doctors[a["doctor_id"]]["languages"] for a in answers])
    assert speaks > 0.85
    # A few very active answerers: the top 5% of doctors give a large share of the answers.
    per_doctor = sorted(Counter(a["doctor_id"] for a in answers).values(), reverse=True)
    assert sum(per_doctor[: len(doctors) // 20]) / len(answers) > 0.25


def test_world_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="n_cases"):
        WorldConfig(n_cases=0)
    with pytest.raises(ValueError, match="name"):
        WorldConfig(name="../escape")


def test_small_world_stats_agree_with_its_tables(small_world: World) -> None:
    stats = small_world.stats
    assert stats["cases"] == small_world.tables["cases"].num_rows
    assert stats["resolved_share"] == round(small_world.tables["resolutions"].num_rows / stats["cases"], 4)


def test_featured_rare_conditions_are_in_both_languages(sample: dict[str, pa.Table]) -> None:
    languages = dict(
        zip(sample["cases"]["case_id"].to_pylist(), sample["cases"]["language"].to_pylist(), strict=True)
    )
    counts = Counter((r["condition_id"], languages[r["case_id"]]) for r in sample["case_labels"].to_pylist())
    for condition in WorldConfig().featured_conditions:
        assert counts[(condition, "en")] >= 3 and counts[(condition, "es")] >= 3, condition


def test_an_unknown_featured_condition_is_refused(knowledge_base: KnowledgeBase, taxonomy: Taxonomy) -> None:
    config = WorldConfig(n_cases=50, n_doctors=20, featured_conditions=("no_such_condition",))
    with pytest.raises(ValueError, match="no_such_condition"):
        generate_world(config, knowledge_base, taxonomy)


def test_later_months_hold_presentations_training_months_never_used(
    sample: dict[str, pa.Table], knowledge_base: KnowledgeBase
) -> None:
    """Each locale's last presentation (when it has two or more) is kept out of the training months."""
    cases = {c["case_id"]: c for c in sample["cases"].to_pylist()}
    conditions = {c.id: c for c in knowledge_base.conditions}
    labels = sample["case_labels"].to_pylist()
    training = [x for x in labels if split_of(cases[x["case_id"]]["created_at"]) == "train"]
    later = [x for x in labels if split_of(cases[x["case_id"]]["created_at"]) != "train"]

    def held_out(label: dict[str, object]) -> bool:
        condition = conditions[str(label["condition_id"])]
        locale = condition.presentations[int(label["presentation_index"])].locale  # type: ignore[call-overload]
        same_locale = [i for i, p in enumerate(condition.presentations) if p.locale == locale]
        return len(same_locale) > 1 and label["presentation_index"] == same_locale[-1]

    assert not any(held_out(x) for x in training)
    seen = {(x["condition_id"], x["presentation_index"]) for x in training}
    unseen_later = sum((x["condition_id"], x["presentation_index"]) not in seen for x in later)
    assert unseen_later > 0.1 * len(later)
