from ml.lexicon import BilingualLexicon, load_lexicon


def test_learns_translations_from_aligned_documents() -> None:
    spanish = ["fiebre y tos", "fiebre alta", "tos seca", "dolor de cabeza", "dolor y fiebre", "exantema"]
    english = ["fever and cough", "high fever", "dry cough", "headache pain", "pain and fever", "rash"]
    lexicon = BilingualLexicon.learn(spanish, english, min_docs=2, max_doc_share=0.6)
    assert lexicon.es_to_en["fiebre"] == "fever"
    assert lexicon.es_to_en["tos"] == "cough"
    assert lexicon.en_to_es["pain"] == "dolor"
    assert "exantema" not in lexicon.es_to_en, "a word seen once is not trusted"


def test_expansion_appends_translations_and_keeps_the_text() -> None:
    lexicon = BilingualLexicon(es_to_en={"fiebre": "fever"}, en_to_es={"rash": "exantema"})
    assert lexicon.expand("Niña con FIEBRE") == "Niña con FIEBRE fever"
    assert lexicon.expand("rash on legs") == "rash on legs exantema"
    assert lexicon.expand("nothing to add") == "nothing to add"


def test_bundled_lexicon_knows_core_clinical_words() -> None:
    lexicon = load_lexicon()
    for spanish, english in [
        ("fiebre", "fever"),
        ("tos", "cough"),
        ("plaquetas", "platelets"),
        ("ictericia", "jaundice"),
    ]:
        assert lexicon.es_to_en[spanish] == english
    assert "con" not in lexicon.es_to_en and "with" not in lexicon.en_to_es, "function words are left out"
