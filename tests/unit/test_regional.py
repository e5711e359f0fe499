import numpy as np

from ml.synthetic import regional


def test_english_spelling_follows_the_author() -> None:
    us = "Pediatric pt with diarrhea, anemia and edema; given acetaminophen"
    uk = regional.to_english_spelling(us, "uk")
    assert uk == "Paediatric pt with diarrhoea, anaemia and oedema; given paracetamol"
    assert regional.to_english_spelling(uk, "us") == us


def test_colorectal_is_not_respelled() -> None:
    assert regional.to_english_spelling("colorectal surgery", "uk") == "colorectal surgery"


def test_spain_terms_become_mexican_with_agreeing_articles() -> None:
    spain = "Se pidió una ecografía y un TAC; en la analítica, hemograma normal. TA 90/60"
    mexico = regional.to_spanish_locale(spain, "es-MX")
    assert mexico == "Se pidió un ultrasonido y una tomografía; en los laboratorios, BH normal. PA 90/60"
    assert "ecografía" not in mexico and "TAC" not in mexico


def test_mexican_terms_become_spanish() -> None:
    mexico = "Tomografía sin hallazgos, ultrasonido con líquido libre, BH con leucocitosis"
    assert (
        regional.to_spanish_locale(mexico, "es-ES")
        == "TAC sin hallazgos, ecografía con líquido libre, hemograma con leucocitosis"
    )


def test_shorthand_rate_bounds() -> None:
    text = "patient with shortness of breath and history of asthma"
    rng = np.random.default_rng(0)
    assert regional.abbreviate(text, "en", 0.0, rng) == text
    assert regional.abbreviate(text, "en", 1.0, rng) == "pt w/ SOB and hx of asthma"
    assert regional.abbreviate("paciente con fiebre", "es", 1.0, rng) == "pcte c/ fiebre"


def test_typos_touch_only_lowercase_words_and_are_seeded() -> None:
    text = "Persistent abdominal tenderness despite antibiotics, CRP 180, MRCP normal"
    first = regional.add_typos(text, 1.0, np.random.default_rng(5))
    assert first == regional.add_typos(text, 1.0, np.random.default_rng(5))
    assert first != text
    assert "CRP 180, MRCP" in first and first.startswith("Persistent")
    assert regional.add_typos(text, 0.0, np.random.default_rng(5)) == text


def test_dropping_accents_keeps_enie() -> None:
    assert regional.drop_accents("¿Niño con fiebre y tomografía?") == "Niño con fiebre y tomografia?"
