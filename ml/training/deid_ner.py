"""Train the de-identifier's token classifiers: one spaCy NER pipeline per language, CPU only.

Spanish learns from MEDDOCAN train, English from PhysioNet deid train; both also from the
synthetic world's train-month posts in their language, so case-post style, shorthand ("c/") and
eponyms are in the training data. English pieces with identifiers come again all upper and all
lower case, since nursing notes carry no capital letters to find names by. Gold types become our kinds
(`KIND_OF_GOLD`); types that must survive (ages, sex, countries, hospitals, relation words, bare
years) are simply not labelled. The best model on dev is copied without optimizer state into
`ml/resources/deid_ner/<language>/` with a `<language>.json` beside it: fingerprint, data hash,
dev metrics and the command that made it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.util import filter_spans

from ml.evaluation.corpora import CORPORA_DIR, GoldDocument, load_deid_gold, load_mtsamples
from ml.evaluation.deid import DIRECT_IDENTIFIERS, planted_documents, score_documents
from ml.paths import SAMPLE_WORLD_DIR
from ml.privacy import kinds
from ml.privacy.ner import model_fingerprint

CONFIG_DIR = Path(__file__).resolve().parent
MODELS_DIR = Path(__file__).resolve().parents[1] / "resources" / "deid_ner"
CORPUS_OF_LANGUAGE = {"es": "meddocan", "en": "physionet"}
SEED = 20251
# Passes over the (cut) training data; each language's dev score stops improving by about then.
DEFAULT_EPOCHS = {"es": 15, "en": 20}
EXPERIMENT = "casematch-deid"

# Gold annotation type -> the kind the NER learns; unlisted types are left unlabelled (they survive).
KIND_OF_GOLD: dict[str, dict[str, str]] = {
    "meddocan": {
        "NOMBRE_SUJETO_ASISTENCIA": kinds.NAME,
        "NOMBRE_PERSONAL_SANITARIO": kinds.NAME,
        "FECHAS": kinds.DATE,
        "CALLE": kinds.ADDRESS,
        "TERRITORIO": kinds.LOCATION,
        "ID_SUJETO_ASISTENCIA": kinds.RECORD_ID,
        "ID_CONTACTO_ASISTENCIAL": kinds.RECORD_ID,
        "ID_ASEGURAMIENTO": kinds.INSURANCE_ID,
        "ID_TITULACION_PERSONAL_SANITARIO": kinds.LICENCE_ID,
        "CORREO_ELECTRONICO": kinds.EMAIL,
        "NUMERO_TELEFONO": kinds.PHONE,
        "NUMERO_FAX": kinds.PHONE,
    },
    "physionet": {
        "PTName": kinds.NAME,
        "PTNameInitial": kinds.NAME,
        "RelativeProxyName": kinds.NAME,
        "HCPName": kinds.NAME,
        "Date": kinds.DATE,
        "Other": kinds.RECORD_ID,
        "Phone": kinds.PHONE,
    },
    "planted": {
        "NAME": kinds.NAME,
        "DATE_OF_BIRTH": kinds.DATE,
        "PHONE": kinds.PHONE,
        "RECORD_NUMBER": kinds.RECORD_ID,
        "NATIONAL_ID": kinds.NATIONAL_ID,
        "ADDRESS": kinds.ADDRESS,
        "EMAIL": kinds.EMAIL,
    },
}
# PhysioNet annotates "Marie Munroe" as two names; one entity is what a tagger can learn.
_NAME_GAP = re.compile(r"[ \t.]*")
# Training text is cut into lines and sentences: those with an identifier are all kept, of the
# others one in CLEAN_EVERY (the CPU budget goes to what the model must learn, not to filler).
_CUT = re.compile(r"\n+|(?<=[.;!?])\s+")
CLEAN_EVERY = 3


@dataclass(frozen=True, slots=True)
class LabelledText:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # (start, end, kind)


@dataclass(frozen=True, slots=True)
class NerTrainingConfig:
    language: str
    max_epochs: int = 30
    patience: int = 3000  # steps without a better dev score
    eval_frequency: int = 500
    width: int = 64
    depth: int = 2
    seed: int = SEED
    world_dir: Path = SAMPLE_WORLD_DIR

    def overrides(self) -> dict[str, Any]:
        return {
            "system.seed": self.seed,
            "training.max_epochs": self.max_epochs,
            "training.max_steps": 0,
            "training.patience": self.patience,
            "training.eval_frequency": self.eval_frequency,
            "components.tok2vec.model.encode.width": self.width,
            "components.tok2vec.model.encode.depth": self.depth,
        }


@dataclass
class NerTrainingResult:
    language: str
    model_dir: Path
    fingerprint: str
    data_hash: str
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    size_bytes: int = 0


def config_path(language: str) -> Path:
    return CONFIG_DIR / f"deid_ner_{language}.cfg"


def model_dir(language: str, root: Path = MODELS_DIR) -> Path:
    return root / language


def gold_examples(corpus: str, split: str, data_dir: Path = CORPORA_DIR) -> list[LabelledText]:
    """A real corpus's documents with their gold spans as our kinds."""
    return [to_labelled(doc, KIND_OF_GOLD[corpus]) for doc in load_deid_gold(corpus, split, data_dir)]


def planted_examples(
    world_dir: Path, split: str, language: str, *, with_case_copies: bool
) -> list[LabelledText]:
    """The world's posts of `split`'s months in `language`; with `with_case_copies`, posts with planted
    identifiers come again all upper and all lower case."""
    examples = []
    for doc in planted_documents(world_dir, split):
        if doc.language != language:
            continue
        example = to_labelled(doc, KIND_OF_GOLD["planted"])
        examples.append(example)
        if with_case_copies and example.spans:
            examples += case_copies(example)
    return examples


def to_labelled(doc: GoldDocument, kind_of: dict[str, str]) -> LabelledText:
    spans = sorted((s.start, s.end, kind_of[s.type]) for s in doc.spans if s.type in kind_of)
    return LabelledText(doc.text, tuple(_join_adjacent_names(doc.text, spans)))


def _join_adjacent_names(text: str, spans: Sequence[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    joined: list[tuple[int, int, str]] = []
    for start, end, kind in spans:
        if joined and kind == kinds.NAME and joined[-1][2] == kinds.NAME and joined[-1][1] <= start:
            previous = joined[-1]
            if _NAME_GAP.fullmatch(text[previous[1] : start]):
                joined[-1] = (previous[0], end, kind)
                continue
        joined.append((start, end, kind))
    return joined


def training_sets(
    language: str, world_dir: Path, data_dir: Path = CORPORA_DIR
) -> dict[str, list[LabelledText]]:
    """Train examples (cut into pieces, see `pieces`) and whole dev documents for one language.

    English pieces with an identifier come three times: as written, all upper and all lower case.
    Dev picks the best model (never test): the real corpus's dev documents only.
    """
    corpus = CORPUS_OF_LANGUAGE[language]
    documents = gold_examples(corpus, "train", data_dir) + planted_examples(
        world_dir, "train", language, with_case_copies=False
    )
    counter = itertools.count()
    train = [
        piece
        for document in documents
        for piece in pieces(document, keep_clean=lambda: next(counter) % CLEAN_EVERY == 0)
    ]
    if language == "en":
        train += [copy for piece in train if piece.spans for copy in case_copies(piece)]
    return {"train": train, "dev": gold_examples(corpus, "dev", data_dir)}


def case_copies(example: LabelledText) -> list[LabelledText]:
    """The example all upper and all lower case (where that keeps every offset)."""
    altered = (example.text.upper(), example.text.lower())
    return [LabelledText(text, example.spans) for text in altered if len(text) == len(example.text)]


def pieces(example: LabelledText, *, keep_clean: Callable[[], bool]) -> list[LabelledText]:
    """The example cut at line and sentence ends (never inside a span), dropping some clean pieces."""
    cuts = [0]
    for match in _CUT.finditer(example.text):
        if not any(start < match.end() < end for start, end, _ in example.spans):
            cuts.append(match.end())
    cuts.append(len(example.text))
    out = []
    for start, end in itertools.pairwise(cuts):
        if not example.text[start:end].strip():
            continue
        spans = tuple((a - start, b - start, k) for a, b, k in example.spans if start <= a and b <= end)
        if spans or keep_clean():
            out.append(LabelledText(example.text[start:end], spans))
    return out


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_NAME_KINDS = frozenset({kinds.NAME})


def common_english_words(world_dir: Path, data_dir: Path = CORPORA_DIR, *, min_count: int = 2) -> list[str]:
    """Lower-case words of English clinical text that are not names, for `ml.privacy.cued_names`.

    Counted outside every gold or planted name in PhysioNet train, the world's English train posts
    and MTSamples train, plus spaCy's stop words. A word annotators marked as a
    name in PhysioNet train stays out unless it is common as a word too ("will", "mark").
    """
    from spacy.lang.en.stop_words import STOP_WORDS

    counts: dict[str, int] = {}
    names: set[str] = set()
    texts = gold_examples("physionet", "train", data_dir) + planted_examples(
        world_dir, "train", "en", with_case_copies=False
    )
    texts += [LabelledText(note.text, ()) for note in load_mtsamples("train", data_dir)]
    for example in texts:
        masked = list(example.text)
        for start, end, kind in example.spans:
            if kind in _NAME_KINDS:
                names.update(w.lower() for w in _WORD.findall(example.text[start:end]))
            masked[start:end] = " " * (end - start)
        for word in _WORD.findall("".join(masked)):
            key = word.lower()
            counts[key] = counts.get(key, 0) + 1
    common = {w for w, n in counts.items() if n >= min_count and (w not in names or n >= 10 * min_count)}
    return sorted(common | set(STOP_WORDS))


def write_common_words(out_root: Path, world_dir: Path, data_dir: Path = CORPORA_DIR) -> Path:
    path = out_root / "en_words.txt"
    path.write_text("\n".join(common_english_words(world_dir, data_dir)) + "\n", encoding="utf-8")
    return path


def to_docbin(nlp: spacy.language.Language, examples: Iterable[LabelledText]) -> DocBin:
    """Tokenize and attach entities, each widened to whole tokens; overlaps keep the longest."""
    docbin = DocBin(store_user_data=False)
    for example in examples:
        doc = nlp.make_doc(example.text)
        ents: list[Span] = []
        for start, end, kind in example.spans:
            span = doc.char_span(start, end, label=kind, alignment_mode="expand")
            if span is not None and span.text.strip():
                ents.append(span)
        doc.ents = filter_spans(ents)
        docbin.add(doc)
    return docbin


def data_hash(sets: dict[str, list[LabelledText]]) -> str:
    digest = hashlib.sha256()
    for split in sorted(sets):
        for example in sets[split]:
            digest.update(split.encode() + b"\0" + example.text.encode() + b"\0")
            digest.update(json.dumps(example.spans).encode())
    return digest.hexdigest()


def train_language(
    config: NerTrainingConfig,
    *,
    out_root: Path = MODELS_DIR,
    command: str = "",
    on_stage: Callable[[str], None] = lambda stage: None,
) -> NerTrainingResult:
    """Convert the data, run `spacy train`, copy the best model to `out_root/<language>`, score it."""
    from spacy.cli.train import train as spacy_train

    started = time.perf_counter()
    language = config.language
    on_stage(f"{language}: converting gold to DocBin")
    sets = training_sets(language, config.world_dir)
    nlp = spacy.blank(language)
    with tempfile.TemporaryDirectory(prefix=f"deid-ner-{language}-") as tmp:
        work = Path(tmp)
        for split, examples in sets.items():
            to_docbin(nlp, examples).to_disk(work / f"{split}.spacy")
        on_stage(
            f"{language}: training on {len(sets['train'])} documents, choosing on {len(sets['dev'])} (dev)"
        )
        spacy_train(
            config_path(language),
            work / "output",
            overrides={
                "paths.train": str(work / "train.spacy"),
                "paths.dev": str(work / "dev.spacy"),
                **config.overrides(),
            },
        )
        target = model_dir(language, out_root)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(work / "output" / "model-best", target)
    if language == "en":
        on_stage(
            f"en: common-word list for the cued-name rule -> {write_common_words(out_root, config.world_dir)}"
        )
    on_stage(f"{language}: scoring the best model on dev")
    metrics = evaluate_on_dev(language, target, world_dir=config.world_dir)
    result = NerTrainingResult(
        language=language,
        model_dir=target,
        fingerprint=model_fingerprint(target),
        data_hash=data_hash(sets),
        metrics=metrics,
        seconds=time.perf_counter() - started,
        size_bytes=sum(p.stat().st_size for p in target.rglob("*") if p.is_file()),
    )
    write_meta(result, config, command=command, out_root=out_root)
    return result


def evaluate_on_dev(language: str, directory: Path, *, world_dir: Path) -> dict[str, float]:
    """Dev scores of the NER alone and of the whole de-identifier with it (GoldScore headlines)."""
    from ml.privacy.deid import Deidentifier
    from ml.privacy.ner import default_model_dir

    corpus = CORPUS_OF_LANGUAGE[language]
    nlp = spacy.load(directory)
    # The other language's packaged model may not exist yet (first training): it is not scored here.
    ner_dirs = {
        other: directory
        if other == language or not (default_model_dir(other) / "config.cfg").exists()
        else default_model_dir(other)
        for other in CORPUS_OF_LANGUAGE
    }
    deidentifier = Deidentifier(ner_dirs=ner_dirs)
    metrics: dict[str, float] = {}
    for name, documents, direct in (
        (corpus, load_deid_gold(corpus, "dev"), DIRECT_IDENTIFIERS[corpus]),
        (
            "planted",
            [d for d in planted_documents(world_dir, "dev") if d.language == language],
            DIRECT_IDENTIFIERS["planted"],
        ),
    ):
        alone = score_documents(documents, direct, lambda d: ner_redactions(nlp(d.text)))
        combined = score_documents(
            documents, direct, lambda d: deidentifier.deidentify(d.text, language).redactions
        )
        for key, value in alone.headline().items():
            metrics[f"dev.{name}.ner.{key}"] = value
        for key, value in combined.headline().items():
            metrics[f"dev.{name}.deid.{key}"] = value
    return metrics


def ner_redactions(doc: Doc) -> list[Any]:
    from ml.privacy.deid import Redaction

    return [Redaction(e.start_char, e.end_char, e.label_) for e in doc.ents]


def write_meta(result: NerTrainingResult, config: NerTrainingConfig, *, command: str, out_root: Path) -> Path:
    path = out_root / f"{result.language}.json"
    meta = {
        "language": result.language,
        "fingerprint": result.fingerprint,
        "training_data_sha256": result.data_hash,
        "config": config_path(result.language).name,
        "params": {k: v for k, v in config.overrides().items()},
        "world": config.world_dir.name,
        "command": command,
        "train_seconds": round(result.seconds, 1),
        "size_bytes": result.size_bytes,
        "dev": {k: round(v, 4) for k, v in result.metrics.items()},
    }
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def rescore(language: str, *, world_dir: Path, out_root: Path = MODELS_DIR) -> dict[str, float]:
    """Score the model in `out_root/<language>` on dev again (after a rule change) and rewrite the
    dev metrics in its `<language>.json`; the model, its fingerprint and data hash stay."""
    directory = model_dir(language, out_root)
    metrics = evaluate_on_dev(language, directory, world_dir=world_dir)
    path = out_root / f"{language}.json"
    meta = json.loads(path.read_text()) if path.exists() else {"language": language}
    meta["fingerprint"] = model_fingerprint(directory)
    meta["dev"] = {k: round(v, 4) for k, v in metrics.items()}
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return metrics


def log_run(
    result: NerTrainingResult, config: NerTrainingConfig, *, tracking_uri: str, artifact_root: Path
) -> str:
    """One MLflow run per language in the `casematch-deid` experiment; returns its id."""
    import mlflow

    from ml.training.tracking import git_sha

    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_root.resolve().as_uri())
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"deid-ner-{result.language}") as run:
        mlflow.log_params({"language": config.language, "world": config.world_dir.name, **config.overrides()})
        mlflow.log_metrics({k: v for k, v in result.metrics.items() if v == v})  # NaN: nothing to score
        mlflow.log_metrics({"seconds.train": result.seconds, "size_bytes": float(result.size_bytes)})
        mlflow.set_tags(
            {"git_sha": git_sha(), "data_hash": result.data_hash, "model_fingerprint": result.fingerprint}
        )
        mlflow.log_artifact(str(config_path(config.language)))
    return str(run.info.run_id)


__all__ = [
    "KIND_OF_GOLD",
    "MODELS_DIR",
    "LabelledText",
    "NerTrainingConfig",
    "NerTrainingResult",
    "log_run",
    "model_fingerprint",
    "rescore",
    "train_language",
    "training_sets",
]
