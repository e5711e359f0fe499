"""One training run: platform records → encoder → every routing model → dev (and test) evaluation → a bundle.

The data is a `PlatformData` snapshot (the synthetic world or a store export) cut by posting time
(`TimeSplit`), plus the real corpora's fixed splits. Splits are never mixed: models fit on `train`;
calibration, thresholds and the doctor ranker use `dev` (the ranker needs out-of-sample specialty
probabilities, so it learns on dev cases, and its dev score comes from a second ranker fitted on
the earlier half of them); `test` is scored only when asked (`score_test`: bench/quality.py does,
and counts each look in bench/test_ledger.csv) and never used to choose anything.

Labels are what a platform records: a case's specialty is its resolution's first specialty (so
only resolved cases teach or score the router); urgency comes from the data's truth where it has
any (the synthetic world), else the previous model's urgency carries over, and the run says so.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from ml.data import PlatformData, TimeSplit
from ml.data.splits import SPLITS
from ml.embeddings.base import Encoder
from ml.evaluation.corpora import CORPUS_FILES
from ml.hashing import sha256_files
from ml.matching import post_text
from ml.models.bundle import RoutingBundle
from ml.models.doctor_ranker import DoctorRanker, DoctorRankerConfig, RoutingRules, apply_rules
from ml.models.novelty import NoveltyConfig, NoveltyScorer
from ml.models.specialty import SpecialtyRouter, SpecialtyRouterConfig
from ml.models.urgency import UrgencyConfig, UrgencyModel
from ml.models.zero_shot import ZeroShotSpecialties
from ml.progress import NoProgress, Progress
from ml.training.data import LabelledText, codiesp_specialties, mtsamples_specialties
from ml.training.evaluate import (
    Metrics,
    activity_baseline_metrics,
    doctor_metrics,
    novelty_metrics,
    similar_case_feedback_metrics,
    specialty_metrics,
    urgency_metrics,
)
from ml.training.interactions import RankingExample, nearest_resolved, replay

Corpus = Literal["mtsamples", "codiesp"]
RARELY_SEEN = 5  # earlier resolved cases of the same condition at most, for the novelty evaluation


class TrainingConfig(BaseModel):
    """Everything a run depends on besides the data itself (logged as MLflow params)."""

    model_config = ConfigDict(frozen=True)

    corpora: tuple[Corpus, ...] = Field(
        default=("mtsamples", "codiesp"), description="real corpora added to the platform's cases"
    )
    specialty: SpecialtyRouterConfig = SpecialtyRouterConfig()
    doctors: DoctorRankerConfig = DoctorRankerConfig()
    rules: RoutingRules = RoutingRules()
    urgency: UrgencyConfig = UrgencyConfig()
    novelty: NoveltyConfig = NoveltyConfig()
    top_specialties: int = Field(default=3, ge=1, description="specialties whose doctors are candidates")


@dataclass
class TrainingResult:
    bundle: RoutingBundle
    metrics: dict[str, Metrics]  # split -> metrics
    examples: dict[str, list[RankingExample]] = field(default_factory=dict)  # doctor-ranking cases per split
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the run could not learn, and what it did instead


@dataclass(frozen=True)
class LabelledSet:
    items: list[LabelledText]
    vectors: npt.NDArray[np.float32]
    rows: list[int]  # platform case rows of the items (empty for real corpora)


@dataclass(frozen=True)
class TrainingData:
    """The platform's cases (their order) with vectors and splits, and every split's labelled sets."""

    platform: PlatformData
    split: TimeSplit
    source: str  # the platform set's name in metrics: synthetic | store
    texts: list[str]
    splits: list[str]
    vectors: npt.NDArray[np.float32]
    sets: dict[str, dict[str, LabelledSet]]  # split -> source -> set

    def rows_of(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.splits) if s == split]

    def urgency_labels(self, rows: Sequence[int]) -> list[tuple[int, str]]:
        """(row, level) of the given rows whose urgency the data knows."""
        truth = self.platform.truth
        cases = self.platform.cases
        return [(i, truth[cases[i].case_id].urgency) for i in rows if cases[i].case_id in truth]


def load_training_data(
    config: TrainingConfig,
    platform: PlatformData,
    split: TimeSplit,
    encoder: Encoder,
    progress: Progress | None = None,
    *,
    score_test: bool = False,
) -> TrainingData:
    """Encode the platform's cases and the configured corpora (the embedding cache makes repeats cheap).

    The corpora's test splits are read and encoded only for a run that will score them.
    """
    progress = progress or NoProgress()
    source = platform.provenance.get("source", "platform")
    cases = platform.cases
    texts = [post_text(c.title, c.text) for c in cases]
    splits = [split.of(c.created_at) for c in cases]
    progress.stage(f"encoding {source} cases", len(texts))
    vectors = _encode(encoder, texts, progress)
    label = {r.case_id: r.specialties[0] for r in platform.resolutions if r.specialties}
    sets: dict[str, dict[str, LabelledSet]] = {}
    for name in SPLITS:
        rows = [i for i, s in enumerate(splits) if s == name and cases[i].case_id in label]
        items = [LabelledText(texts[i], (label[cases[i].case_id],), cases[i].language, source) for i in rows]
        sets[name] = {source: LabelledSet(items, vectors[rows], rows)}
        for corpus in config.corpora if name != "test" or score_test else ():
            items = mtsamples_specialties(name) if corpus == "mtsamples" else codiesp_specialties(name)
            progress.stage(f"encoding {corpus} {name}", len(items))
            sets[name][corpus] = LabelledSet(items, _encode(encoder, [x.text for x in items], progress), [])
    return TrainingData(platform, split, source, texts, splits, vectors, sets)


def train(
    config: TrainingConfig,
    platform: PlatformData,
    split: TimeSplit,
    encoder: Encoder,
    *,
    encoder_spec: str,
    data: TrainingData | None = None,
    progress: Progress | None = None,
    score_test: bool = False,
    previous: RoutingBundle | None = None,
    urgency_prior: tuple[PlatformData, TimeSplit] | None = None,
) -> TrainingResult:
    """Fit every routing model; `previous` (the champion) lends what the data cannot teach.

    Urgency without labels in the data comes from `previous`, else is fitted on `urgency_prior`
    (labelled data, e.g. the synthetic sample). A platform with no history (cold start) still gets
    a bundle: specialties from the real corpora and the zero-shot descriptions, doctors ranked by
    specialty fit and activity rules, novelty as unlikeness; `notes` say which parts are untrained.
    A given `data` (from `load_training_data`) is what the run reads; `platform` and `split` only
    build it when it is not given.
    """
    progress = progress or NoProgress()
    timer = _Timer()
    if data is None:
        data = load_training_data(config, platform, split, encoder, progress, score_test=score_test)
    texts, vectors, sets, source = data.texts, data.vectors, data.sets, data.source
    notes: list[str] = []
    timer.lap("encode")

    progress.stage("specialty router", 2)
    zero_shot = ZeroShotSpecialties.embed(encoder) if config.specialty.zero_shot else None
    router = SpecialtyRouter(config.specialty, zero_shot)
    train_items, train_vectors = _pooled(sets["train"])
    router.fit([x.text for x in train_items], train_vectors, [x.specialties for x in train_items])
    progress.advance()
    dev_items, dev_vectors = _pooled(sets["dev"])
    source_size = {name: len(t.items) for name, t in sets["dev"].items()}
    router.calibrate(
        [x.text for x in dev_items],
        dev_vectors,
        [x.specialties for x in dev_items],
        sample_weight=[1.0 / source_size[x.source] for x in dev_items],  # each source counts equally
    )
    progress.advance()
    timer.lap("specialty")
    if not sets["train"][source].items:
        notes.append(
            f"specialties: no resolved {source} cases to learn from; trained on the real corpora"
            + (" and the zero-shot specialty descriptions" if zero_shot else "")
        )

    progress.stage("urgency", 1)
    urgency = _urgency(config.urgency, data, previous, urgency_prior, notes)
    progress.advance()
    timer.lap("urgency")

    held_out = data.rows_of("dev") + data.rows_of("test")
    neighbour_rows, neighbour_sims = nearest_resolved(data.platform, vectors, held_out)
    progress.stage("replaying answers and acceptances", len(held_out))
    _, examples = replay(
        data.platform,
        data.split,
        vectors,
        lambda rows: router.predict_proba([texts[i] for i in rows], vectors[list(rows)]),
        top_specialties=config.top_specialties,
        neighbours=neighbour_rows,
        on_case=progress.advance,
    )
    by_split = {s: [e for e in examples if e.split == s] for s in ("dev", "test")}
    progress.stage("doctor ranker", 2)
    ranker = _fit_ranker(config.doctors, by_split["dev"])
    progress.advance()
    # The served ranker learns on every dev case, so its own dev score would be in-sample. Dev is
    # scored instead by a ranker fitted on the earlier half of the dev cases (the replay yields them
    # in posting order) and judged on the later half, beside the baseline on that same half.
    half = len(by_split["dev"]) // 2
    scored = {"dev": (_fit_ranker(config.doctors, by_split["dev"][:half]), by_split["dev"][half:])}
    scored["test"] = (ranker, by_split["test"])
    progress.advance()
    timer.lap("doctors")
    if not ranker.trained:
        notes.append(
            "doctors: no answers on dev cases to learn from; ranked by specialty fit and activity rules"
        )

    novelty = NoveltyScorer(config.novelty).fit(_similarity_matrix(neighbour_sims, data.rows_of("dev")))
    if not data.rows_of("dev"):
        notes.append("novelty: no dev cases to calibrate on; novelty is 1 - similarity to resolved cases")
    bundle = RoutingBundle(
        router=router,
        urgency=urgency,
        ranker=ranker,
        novelty=novelty,
        rules=config.rules,
        encoder_spec=encoder_spec,
        encoder_fingerprint=encoder.fingerprint.token,
        candidates={"top_specialties": config.top_specialties},
    )

    scored_splits = ("dev", "test") if score_test else ("dev",)
    progress.stage("evaluating", len(scored_splits))
    metrics = {}
    for name in scored_splits:
        novelty_rows, rarely_seen = _rarely_seen(data, name)
        metrics[name] = evaluate_split(
            bundle,
            sets[name],
            *scored[name],
            _similarity_matrix(neighbour_sims, novelty_rows),
            rarely_seen=rarely_seen,
            urgency_labels=data.urgency_labels(data.rows_of(name)),
            texts=texts,
            slices=_slices(data, sets[name][source].rows, prefix=source),
        ) | _feedback_slice(data, name)
        progress.advance()
    timer.lap("evaluate")
    sizes = {f"{split}.{name}": len(t.items) for split, d in sets.items() for name, t in d.items()}
    return TrainingResult(bundle, metrics, by_split, sizes, timer.laps, notes)


def _urgency(
    config: UrgencyConfig,
    data: TrainingData,
    previous: RoutingBundle | None,
    prior: tuple[PlatformData, TimeSplit] | None,
    notes: list[str],
) -> UrgencyModel:
    """Fit on the data's urgency labels; without any, carry the previous model over, else fit the prior."""
    model = _fit_urgency(config, data.platform, data.split, data.texts)
    if model is not None:
        return model
    if previous is not None:
        notes.append(
            f"urgency: no labels in the {data.source} data; the previous model's urgency carries over"
        )
        return previous.urgency
    if prior is not None:
        prior_texts = [post_text(c.title, c.text) for c in prior[0].cases]
        model = _fit_urgency(config, *prior, prior_texts)
        if model is not None:
            name = prior[0].provenance.get("world", "prior")
            notes.append(
                f"urgency: no labels in the {data.source} data and no champion; fitted on the {name} world"
            )
            return model
    raise ValueError(f"the {data.source} data has no urgency labels and there is no previous model or prior")


def _fit_urgency(
    config: UrgencyConfig, platform: PlatformData, split: TimeSplit, texts: Sequence[str]
) -> UrgencyModel | None:
    """An urgency model fitted on train cases and calibrated on dev ones, or None without labels for both."""
    labelled = {
        name: [(texts[i], platform.truth[c.case_id].urgency) for i, c in enumerate(platform.cases)
               if c.case_id in platform.truth and split.of(c.created_at) == name]
        for name in ("train", "dev")
    }  # fmt: skip
    if not (labelled["train"] and labelled["dev"]):
        return None
    model = UrgencyModel(config)
    model.fit([t for t, _ in labelled["train"]], [level for _, level in labelled["train"]])
    return model.calibrate([t for t, _ in labelled["dev"]], [level for _, level in labelled["dev"]])


def training_data_hash(platform: PlatformData, corpora: Sequence[Corpus]) -> str:
    """One digest of what a run reads (the platform snapshot's identity, corpus files): its data identity."""
    identity = platform.provenance.get("data_hash") or "|".join(
        f"{k}={v}" for k, v in sorted(platform.provenance.items())
    )
    corpus_digest = sha256_files([CORPUS_FILES[c] for c in sorted(corpora)]) if corpora else ""
    return hashlib.sha256(f"{identity}\n{corpus_digest}".encode()).hexdigest()[:16]


def evaluate_split(
    bundle: RoutingBundle,
    data: dict[str, LabelledSet],
    ranker: DoctorRanker,
    examples: Sequence[RankingExample],
    neighbour_similarities: npt.NDArray[np.float64],
    *,
    rarely_seen: npt.NDArray[np.bool_],
    urgency_labels: Sequence[tuple[int, str]],
    texts: Sequence[str],
    slices: dict[str, npt.NDArray[np.bool_]],
) -> Metrics:
    """Every metric of one split; `slices` name subsets of the platform's labelled cases to score apart.

    `ranker` scores the doctor `examples`: one that never learned from them. Urgency is scored on
    the cases whose level the data knows (`urgency_labels`: row, level), novelty on the cases whose
    condition it knows.
    """
    metrics: Metrics = {}
    platform = next(iter(data))  # the platform's own set comes first, the corpora after it
    for source, labelled in data.items():
        if not labelled.items:
            continue  # e.g. a store with no resolved case in this split yet
        probabilities = bundle.router.predict_proba([x.text for x in labelled.items], labelled.vectors)
        label_sets = [x.specialties for x in labelled.items]
        metrics |= specialty_metrics(probabilities, label_sets, prefix=f"specialty.{source}")
        if source == platform:
            for name, keep in slices.items():
                if keep.any():
                    metrics |= specialty_metrics(
                        probabilities[keep],
                        [label_sets[i] for i in np.flatnonzero(keep)],
                        prefix=f"specialty.{name}",
                    )
    if examples:
        metrics |= doctor_metrics(
            examples, lambda e: ranker.score(e.features), prefix="doctors.holdout.model"
        )
        metrics |= doctor_metrics(
            examples,
            lambda e: apply_rules(ranker.score(e.features), e.features, bundle.rules),
            prefix="doctors.holdout.served",
        )
        metrics |= activity_baseline_metrics(examples, prefix="doctors.holdout.activity_baseline")
    if urgency_labels:
        urgency = bundle.urgency.predict_proba([texts[i] for i, _ in urgency_labels])
        levels = [level for _, level in urgency_labels]
        metrics |= urgency_metrics(urgency, levels, bundle.urgency.levels(urgency), prefix="urgency")
    if rarely_seen.size:
        metrics |= novelty_metrics(
            bundle.novelty.score(neighbour_similarities), rarely_seen, prefix="novelty"
        )
    return metrics


def _slices(data: TrainingData, rows: Sequence[int], *, prefix: str) -> dict[str, npt.NDArray[np.bool_]]:
    """Per language, and (where the data knows presentations) posts written from a presentation no
    training post used (the harder slice: the world has only 4-7 written presentations per condition)."""
    cases, truth = data.platform.cases, data.platform.truth
    slices = {
        f"{prefix}_en": np.array([cases[i].language == "en" for i in rows], dtype=bool),
        f"{prefix}_es": np.array([cases[i].language == "es" for i in rows], dtype=bool),
    }
    if truth:

        def presentation(i: int) -> tuple[str, int] | None:
            known = truth.get(cases[i].case_id)
            return (known.condition_id, known.presentation_index) if known else None

        seen = {presentation(i) for i in data.sets["train"][data.source].rows}
        slices[f"{prefix}_new_presentation"] = np.array(
            [presentation(i) is not None and presentation(i) not in seen for i in rows], dtype=bool
        )
    return slices


def _feedback_slice(data: TrainingData, split: str) -> Metrics:
    """Verdicts on similar cases suggested for this split's cases, from the first verdict on."""
    row_of = {c.case_id: i for i, c in enumerate(data.platform.cases)}
    pairs = [
        (row_of[f.case_id], row_of[f.similar_case_id], f.useful)
        for f in data.platform.feedback
        if f.similar_case_id in row_of and f.case_id in row_of and data.splits[row_of[f.case_id]] == split
    ]
    if not pairs:
        return {}
    cosine = np.array([float(data.vectors[a] @ data.vectors[b]) for a, b, _ in pairs])
    useful = np.array([u for _, _, u in pairs], dtype=bool)
    return similar_case_feedback_metrics(cosine, useful, prefix="feedback.similar_cases")


def _condition_of(data: TrainingData) -> dict[str, str]:
    """Each case's condition: the world's truth, else its resolution's diagnosis (case-folded)."""
    if data.platform.truth:
        return {case_id: truth.condition_id for case_id, truth in data.platform.truth.items()}
    return {r.case_id: " ".join(r.diagnosis.casefold().split()) for r in data.platform.resolutions}


def _rarely_seen(data: TrainingData, split: str) -> tuple[list[int], npt.NDArray[np.bool_]]:
    """The rows of `split` whose condition is known, and for each whether at most RARELY_SEEN cases
    of that condition were resolved before it was posted."""
    condition = _condition_of(data)
    cases = data.platform.cases
    resolved: dict[str, list[float]] = {}
    for r in data.platform.resolutions:
        if r.case_id in condition:
            resolved.setdefault(condition[r.case_id], []).append(r.resolved_at.timestamp())
    times = {name: np.sort(t) for name, t in resolved.items()}
    rows = [i for i in data.rows_of(split) if cases[i].case_id in condition]
    none = np.zeros(0)
    return rows, np.array(
        [
            np.searchsorted(times.get(condition[cases[i].case_id], none), cases[i].created_at.timestamp())
            <= RARELY_SEEN
            for i in rows
        ],
        dtype=bool,
    )


def _similarity_matrix(
    similarities: dict[int, npt.NDArray[np.float64]], rows: Sequence[int]
) -> npt.NDArray[np.float64]:
    width = max((len(similarities[r]) for r in rows), default=0)
    out = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        out[i, : len(similarities[r])] = similarities[r]
    return out


def _fit_ranker(config: DoctorRankerConfig, examples: Sequence[RankingExample]) -> DoctorRanker:
    return DoctorRanker(config).fit([e.features for e in examples], [e.answered for e in examples])


def _pooled(split: dict[str, LabelledSet]) -> tuple[list[LabelledText], npt.NDArray[np.float32]]:
    items = [x for t in split.values() for x in t.items]
    return items, np.concatenate([t.vectors for t in split.values()])


def _encode(
    encoder: Encoder, texts: list[str], progress: Progress, *, batch: int = 256
) -> npt.NDArray[np.float32]:
    out = []
    for start in range(0, len(texts), batch):
        out.append(np.asarray(encoder.encode_documents(texts[start : start + batch]), dtype=np.float32))
        progress.advance(min(batch, len(texts) - start))
    return np.concatenate(out) if out else np.zeros((0, encoder.dim), dtype=np.float32)


class _Timer:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 1)
        self._last = now


def score_bundle(bundle: RoutingBundle, data: TrainingData) -> Metrics:
    """Dev metrics of an already fitted bundle on `data`, as `train` scores its own candidate (doctors
    on the later half of the dev cases): a champion and a candidate judged on the same newest weeks."""
    dev_rows = data.rows_of("dev")
    neighbour_rows, neighbour_sims = nearest_resolved(data.platform, data.vectors, dev_rows)
    _, examples = replay(
        data.platform,
        data.split,
        data.vectors,
        lambda rows: bundle.router.predict_proba([data.texts[i] for i in rows], data.vectors[list(rows)]),
        splits=("dev",),
        top_specialties=bundle.candidates.get("top_specialties", 3),
        neighbours=neighbour_rows,
    )
    novelty_rows, rarely_seen = _rarely_seen(data, "dev")
    return evaluate_split(
        bundle,
        data.sets["dev"],
        bundle.ranker,
        examples[len(examples) // 2 :],
        _similarity_matrix(neighbour_sims, novelty_rows),
        rarely_seen=rarely_seen,
        urgency_labels=data.urgency_labels(dev_rows),
        texts=data.texts,
        slices=_slices(data, data.sets["dev"][data.source].rows, prefix=data.source),
    )
