"""The Presidio analyzer casematch runs: its spaCy pipelines and its recognizers, per language.

Each language runs its own trained token classifier (`ml/resources/deid_ner/<language>/`: a
small CNN tok2vec and NER trained by `casematch train-deid`, see `ner.py`) once per post; the
rules beside it keep what they do better (e-mails, phones, structured and labelled ids, written
dates, addresses) and veto nothing the model finds. Every pattern recognizer is registered for
both languages: a doctor in the US writing in Spanish can still paste an SSN.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import (
    CaSinRecognizer,
    EsNieRecognizer,
    EsNifRecognizer,
    UsSsnRecognizer,
)
from spacy.attrs import IDX
from spacy.language import Language
from spacy.tokens import Doc

from ml.privacy.addresses import AddressRecognizer
from ml.privacy.cued_names import CuedNameRecognizer
from ml.privacy.kinds import KINDS, NATIONAL_ID
from ml.privacy.names import NameRecognizer
from ml.privacy.ner import NerRecognizer, default_model_dir, load_pipeline
from ml.privacy.recognizers import (
    ClinicalPhoneRecognizer,
    CurpRecognizer,
    MonthDayRecognizer,
    NinoRecognizer,
    OfflineEmailRecognizer,
    PlaceRecognizer,
    WrittenDateRecognizer,
    insurance_id_recognizer,
    labelled_licence_recognizer,
    labelled_national_id_recognizer,
    labelled_phone_recognizer,
    record_id_recognizer,
)

LANGUAGES = ("en", "es")


def model_dirs(overrides: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """Where each language's trained pipeline is: the packaged one unless overridden."""
    return {language: (overrides or {}).get(language, default_model_dir(language)) for language in LANGUAGES}


def build_analyzer(pipelines: Mapping[str, Language]) -> AnalyzerEngine:
    """An analyzer for English and Spanish posts over the given trained pipelines."""
    nlp_engine = _LoadedSpacyEngine(
        dict(pipelines),
        # The NER recognizer reads the Doc itself; Presidio's own entity mapping stays unused.
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=list(KINDS)),
    )
    registry = RecognizerRegistry(
        recognizers=[r for language in LANGUAGES for r in _recognizers(language)],
        supported_languages=list(LANGUAGES),
    )
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=list(LANGUAGES))


def load_pipelines(directories: Mapping[str, Path]) -> dict[str, Language]:
    return {language: load_pipeline(directory) for language, directory in directories.items()}


class _LoadedSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine over pipelines loaded by us.

    SpacyNlpEngine.load() downloads any model that is not an installed package; ours are folders
    inside the package, and nothing may download at run time.
    """

    def __init__(
        self, pipelines: dict[str, Language], *, ner_model_configuration: NerModelConfiguration
    ) -> None:
        models = [{"lang_code": lang, "model_name": nlp.meta["name"]} for lang, nlp in pipelines.items()]
        super().__init__(models=models, ner_model_configuration=ner_model_configuration)
        self._pipelines = pipelines

    def load(self) -> None:
        self.nlp = self._pipelines  # type: ignore[assignment]  # Presidio annotates `nlp` as None

    def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
        # These pipelines have no lemmatizer, so every lemma is "" (as it was before them: the
        # English pipeline ran without one); filling the list directly saves a pass over the Doc.
        # The NER recognizer reads `doc.ents` itself, so Presidio's entity mapping is skipped.
        return NlpArtifacts(
            entities=[],
            tokens=doc,
            tokens_indices=doc.to_array(IDX).tolist(),
            lemmas=[""] * len(doc),
            nlp_engine=self,
            language=language,
            scores=[],
        )


def _recognizers(language: str) -> list[EntityRecognizer]:
    # Spanish writes day/month: "5/13" in a Spanish post is no date, "12/5" would be the 12th of May.
    # Notes all in upper or lower case are an English (US nursing) habit.
    by_language: list[EntityRecognizer] = (
        [MonthDayRecognizer(language), CuedNameRecognizer(language)] if language == "en" else []
    )
    return [
        *by_language,
        NerRecognizer(language),
        NameRecognizer(language),
        AddressRecognizer(language),
        WrittenDateRecognizer(language),
        ClinicalPhoneRecognizer(language),
        labelled_phone_recognizer(language),
        OfflineEmailRecognizer(language),
        record_id_recognizer(language),
        insurance_id_recognizer(language),
        PlaceRecognizer(language),
        labelled_national_id_recognizer(language),
        labelled_licence_recognizer(language),
        UsSsnRecognizer(supported_language=language, supported_entity=NATIONAL_ID),
        CaSinRecognizer(supported_language=language, supported_entity=NATIONAL_ID),
        NinoRecognizer(language),
        EsNifRecognizer(supported_language=language, supported_entity=NATIONAL_ID),
        EsNieRecognizer(supported_language=language, supported_entity=NATIONAL_ID),
        CurpRecognizer(language),
    ]
