from pathlib import Path
from typing import Any

import pytest
import yaml

from ml.synthetic.knowledge import KnowledgeBase, KnowledgeBaseError, load_knowledge_base
from ml.taxonomy import Taxonomy
from ml.text import fold


def _presentation(locale: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "locale": locale,
        "chief_complaint": "rubbery branching material in the sputum",
        "history": ["single-ventricle palliation in early childhood"],
        "symptoms": ["productive cough", "wheeze", "breathlessness on stairs"],
        "exam": ["SpO2 85%", "reduced air entry right base"],
        "tests": ["CXR right lower lobe collapse", "albumin 29 g/L"],
        "treatments": ["salbutamol"],
    }
    return base | overrides


def _condition(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "plastic_bronchitis_test",
        "name_en": "Plastic bronchitis",
        "name_es": "Bronquitis plástica",
        "aliases_en": ["cast bronchitis"],
        "primary_specialty": "pediatric_pulmonology",
        "secondary_specialties": ["pediatric_cardiology"],
        "age_min": 3,
        "age_max": 17,
        "male_fraction": 0.5,
        "urgency": "urgent",
        "rarity": "very_rare",
        "presentations": [
            _presentation("en"),
            _presentation("en"),
            _presentation("es-ES"),
            _presentation("es-MX"),
        ],
    }
    return base | overrides


def _write(tmp_path: Path, *conditions: dict[str, Any]) -> Path:
    (tmp_path / "kb.yaml").write_text(yaml.safe_dump(list(conditions), allow_unicode=True))
    return tmp_path


def test_a_well_formed_condition_loads(tmp_path: Path) -> None:
    kb = load_knowledge_base(_write(tmp_path, _condition()))
    (condition,) = kb.conditions
    assert condition.specialties == ["pediatric_pulmonology", "pediatric_cardiology"]
    assert condition.names_in("Could this be BRONQUITIS PLASTICA?") == "Bronquitis plástica"
    assert condition.names_in("bronchitis, plastic-free") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"primary_specialty": "pulmonolgy"}, "pulmonolgy"),
        ({"presentations": [_presentation("en")] * 4}, "es-ES"),
        (
            {
                "presentations": [_presentation("en", symptoms=["cough", "fever", "cast bronchitis"])] * 2
                + [_presentation("es-ES"), _presentation("es-MX")]
            },
            "states the diagnosis",
        ),
        (
            {
                "presentations": [_presentation("en", history=["7 y/o after Fontan"])] * 2
                + [_presentation("es-ES"), _presentation("es-MX")]
            },
            "states the patient's age",
        ),
        (
            {
                "presentations": [_presentation("en", symptoms=["cough", "she wheezes", "fever"])] * 2
                + [_presentation("es-ES"), _presentation("es-MX")]
            },
            "gendered",
        ),
        (
            {
                "presentations": [_presentation("en", age_min=1, age_max=2)] * 2
                + [_presentation("es-ES"), _presentation("es-MX")]
            },
            "leave the condition's band",
        ),
    ],
)
def test_invalid_conditions_are_refused_with_a_reason(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(KnowledgeBaseError, match=message):
        load_knowledge_base(_write(tmp_path, _condition(**change)))


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="duplicate condition ids"):
        load_knowledge_base(_write(tmp_path, _condition(), _condition()))


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match=r"no knowledge base files"):
        load_knowledge_base(tmp_path)


def test_fold_ignores_case_and_accents() -> None:
    assert fold("Tomografía ÁRBOL") == "tomografia arbol"


# --- the real knowledge base ----------------------------------------------------------------------


def test_knowledge_base_is_large_and_leads_every_specialty(
    knowledge_base: KnowledgeBase, taxonomy: Taxonomy
) -> None:
    assert len(knowledge_base.conditions) >= 250
    coverage = knowledge_base.primary_coverage()
    missing = [code for code in taxonomy.codes if coverage[code] == 0]
    assert not missing, f"specialties with no condition: {missing}"


def test_knowledge_base_has_the_rare_cases_crowdsourcing_is_for(knowledge_base: KnowledgeBase) -> None:
    def find(*words: str) -> list[str]:
        return [c.id for c in knowledge_base.conditions if all(w in fold(c.name_en) for w in words)]

    assert find("plastic bronchitis"), "plastic bronchitis after Fontan is missing"
    assert find("uremic") or find("uraemic"), "post-diarrhoeal HUS is missing"
    rare = [c for c in knowledge_base.conditions if c.rarity in ("rare", "very_rare")]
    assert len(rare) >= 0.2 * len(knowledge_base.conditions)


def test_every_condition_is_written_in_english_and_both_spanishes(knowledge_base: KnowledgeBase) -> None:
    for condition in knowledge_base.conditions:
        assert len(condition.presentations_for("en")) >= 2, condition.id
        assert condition.presentations_for("es-ES"), condition.id
        assert condition.presentations_for("es-MX"), condition.id
