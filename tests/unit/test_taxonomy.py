import pytest

from ml.taxonomy import Taxonomy, UnknownSpecialtyError


def test_taxonomy_has_the_63_api_codes_with_both_names(taxonomy: Taxonomy) -> None:
    assert len(taxonomy) == 63
    assert len(set(taxonomy.codes)) == 63
    pulm = taxonomy.get("pediatric_pulmonology")
    assert pulm.name("en") == "Pediatric Pulmonology"
    assert pulm.name("es") == "Neumología Pediátrica"
    assert pulm.parent == "pediatrics"


def test_parents_are_codes_of_the_taxonomy(taxonomy: Taxonomy) -> None:
    for specialty in taxonomy.specialties:
        assert specialty.parent is None or specialty.parent in taxonomy


def test_unknown_code_is_refused_with_the_bad_value(taxonomy: Taxonomy) -> None:
    with pytest.raises(UnknownSpecialtyError, match="'cardiolgy'"):
        taxonomy.get("cardiolgy")
    assert "cardiolgy" not in taxonomy
