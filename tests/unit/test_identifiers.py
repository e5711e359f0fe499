from datetime import UTC, datetime

import numpy as np
import pytest

from ml.synthetic.identifiers import KINDS, IdentifierFactory


@pytest.mark.parametrize(
    ("country", "language"), [("US", "en"), ("GB", "en"), ("AU", "en"), ("ES", "es"), ("MX", "es")]
)
def test_spans_point_exactly_at_the_planted_values(country: str, language: str) -> None:
    factory = IdentifierFactory()
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(40):
        planted = factory.plant(
            country=country,
            language=language,
            patient_sex="F",
            patient_age=34.0,
            created_at=datetime(2025, 6, 1, tzinfo=UTC),
            rng=rng,
        )
        assert planted.spans
        for span in planted.spans:
            value = planted.sentence[span.start : span.end]
            assert value and value == value.strip()
            assert span.kind in KINDS
            seen.add(span.kind)
    assert {"NAME", "PHONE", "DATE_OF_BIRTH", "RECORD_NUMBER"} <= seen


def test_national_ids_follow_the_country() -> None:
    factory = IdentifierFactory()
    rng = np.random.default_rng(1)
    curps = []
    for _ in range(60):
        planted = factory.plant(
            country="MX",
            language="es",
            patient_sex="M",
            patient_age=50.0,
            created_at=datetime(2025, 6, 1, tzinfo=UTC),
            rng=rng,
        )
        curps += [planted.sentence[s.start : s.end] for s in planted.spans if s.kind == "NATIONAL_ID"]
    assert curps and all(len(c) == 18 and c[:4].isalpha() for c in curps)


def test_planting_is_deterministic_for_a_seed() -> None:
    def plant(seed: int) -> str:
        return (
            IdentifierFactory()
            .plant(
                country="ES",
                language="es",
                patient_sex="M",
                patient_age=7.0,
                created_at=datetime(2025, 1, 1, tzinfo=UTC),
                rng=np.random.default_rng(seed),
            )
            .sentence
        )

    assert plant(9) == plant(9)
    assert plant(9) != plant(10)
