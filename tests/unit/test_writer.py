from datetime import UTC, datetime

import numpy as np
import pytest

from ml.synthetic.identifiers import IdentifierFactory
from ml.synthetic.knowledge import Condition, KnowledgeBase
from ml.synthetic.writer import MAX_WORDS, MIN_WORDS, AuthorStyle, CaseWriter, Patient

CAREFUL_EN = AuthorStyle(
    locale="en", spelling="us", shorthand_rate=0.0, typo_rate=0.0, drops_accents=False, asks_questions=0.0
)
CAREFUL_MX = AuthorStyle(
    locale="es-MX", spelling="us", shorthand_rate=0.0, typo_rate=0.0, drops_accents=False, asks_questions=0.0
)


@pytest.fixture(scope="module")
def bronchitis(knowledge_base: KnowledgeBase) -> Condition:
    return knowledge_base.by_id()["plastic_bronchitis_fontan"]


def test_a_post_keeps_the_key_clues_and_describes_the_patient(bronchitis: Condition) -> None:
    presentation = bronchitis.presentations_for("en")[0]
    for seed in range(20):
        case = CaseWriter(leak_rate=0.0).write(
            bronchitis, presentation, Patient(age=9.5, sex="F"), CAREFUL_EN, np.random.default_rng(seed)
        )
        assert MIN_WORDS <= len(case.body.split()) <= MAX_WORDS
        assert presentation.symptoms[0] in case.body and presentation.history[0] in case.body
        assert "9-year-old girl" in case.body or "9yo F" in case.title or "9F" in case.title
        assert bronchitis.names_in(case.body) is None and not case.states_diagnosis


def test_a_floated_diagnosis_is_recorded(bronchitis: Condition) -> None:
    case = CaseWriter(leak_rate=1.0).write(
        bronchitis,
        bronchitis.presentations_for("en")[0],
        Patient(age=9.5, sex="F"),
        CAREFUL_EN,
        np.random.default_rng(0),
    )
    assert case.states_diagnosis and bronchitis.names_in(case.body)


def test_a_mexican_author_writes_mexican_spanish_even_from_a_spain_presentation(
    bronchitis: Condition,
) -> None:
    presentation = bronchitis.presentations_for("es-ES")[0]
    case = CaseWriter(leak_rate=0.0).write(
        bronchitis, presentation, Patient(age=12, sex="M"), CAREFUL_MX, np.random.default_rng(1)
    )
    assert "niño de 12 años" in case.body.lower()
    assert " TAC" not in case.body and "ecografía" not in case.body


def test_identifier_spans_survive_placement(bronchitis: Condition) -> None:
    rng = np.random.default_rng(4)
    factory = IdentifierFactory()
    for _ in range(10):
        planted = factory.plant(
            country="GB",
            language="en",
            patient_sex="M",
            patient_age=8.0,
            created_at=datetime(2025, 3, 1, tzinfo=UTC),
            rng=rng,
        )
        case = CaseWriter(leak_rate=0.0).write(
            bronchitis,
            bronchitis.presentations_for("en")[1],
            Patient(age=8, sex="M"),
            CAREFUL_EN,
            rng,
            planted,
        )
        assert [case.body[s.start : s.end] for s in case.body_spans] == [
            planted.sentence[s.start : s.end] for s in planted.spans
        ]
