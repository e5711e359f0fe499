import pytest

from ml.language import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Niño de 9 años operado de Fontan que tose y expulsa moldes", "es"),
        ("Varon de 60 anos con dolor toracico y troponina alta", "es"),  # accents dropped
        ("8yo boy after Fontan coughing up casts", "en"),
        ("Chest pain in a 60 year old man with a history of smoking", "en"),
        ("Fontan casts", "und"),  # no function words: the caller must say
        ("", "und"),
    ],
)
def test_detects_english_and_spanish_posts_and_admits_when_it_cannot(text: str, language: str) -> None:
    assert detect_language(text) == language
