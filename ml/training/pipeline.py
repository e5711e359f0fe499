"""One training run: data → encoder → every routing model → dev and test evaluation → a bundle.

Splits (never mixed): models fit on `train` (the synthetic world's months before September
plus the real corpora's train splits); calibration, thresholds and the doctor ranker use `dev`
(September-October; the ranker needs out-of-sample specialty probabilities, so it learns on dev
cases, and its dev score comes from a second ranker fitted on the earlier half of them); `test`
(November-December and the corpora's test splits) is scored only when asked (`score_test`:
bench/quality.py does, and counts each look in bench/test_ledger.csv) and never used to choose
anything. A plain training run (`casematch train`, the quality gates) never looks at it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

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
from ml.synthetic.splits import split_of
from ml.synthetic.world import read_table
from ml.training.data import LabelledText, codiesp_specialties, mtsamples_specialties
from ml.training.evaluate import (
    Metrics,
    activity_baseline_metrics,
    doctor_metrics,
    novelty_metrics,
    specialty_metrics,
    urgency_metrics,
)
from ml.training.interactions import RankingExample, nearest_resolved, replay_world

Corpus = Literal["mtsamples", "codiesp"]
RARELY_SEEN = 5  # earlier resolved cases of the same condition at most, for the novelty evaluation


class TrainingConfig(BaseModel):
    """Everything a run depends on besides the data itself (logged as MLflow params)."""

    model_config = ConfigDict(frozen=True)

    corpora: tuple[Corpus, ...] = Field(
        default=("mtsamples", "codiesp"), description="real corpora added to synthetic"
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


@dataclass(frozen=True)
class LabelledSet:
    items: list[LabelledText]
    vectors: npt.NDArray[np.float32]
    rows: list[int]  # cases-table rows of the synthetic items (empty for real corpora)


@dataclass(frozen=True)
class TrainingData:
    """The world's cases (table order) with their vectors, and every split's labelled sets by source."""

    cases: list[dict[str, Any]]
    labels: list[dict[str, Any]]
    texts: list[str]
    splits: list[str]
    vectors: npt.NDArray[np.float32]
    sets: dict[str, dict[str, LabelledSet]]  # split -> source -> set


def load_training_data(
    config: TrainingConfig,
    world_dir: Path,
    encoder: Encoder,
    progress: Progress | None = None,
    *,
    score_test: bool = False,
) -> TrainingData:
    """Read and encode the world and the configured corpora (the embedding cache makes repeats cheap).

    The corpora's test splits are read and encoded only for a run that will score them.
    """
    progress = progress or NoProgress()
    cases = read_table(world_dir, "cases").to_pylist()
    labels = read_table(world_dir, "case_labels").to_pylist()
    texts = [post_text(c["title"], c["body"]) for c in cases]
    splits = [split_of(c["created_at"]) for c in cases]
    progress.stage("encoding synthetic cases", len(texts))
    vectors = _encode(encoder, texts, progress)
    sets: dict[str, dict[str, LabelledSet]] = {}
    for split in ("train", "dev", "test"):
        rows = [i for i, s in enumerate(splits) if s == split]
        synthetic = [
            LabelledText(texts[i], (labels[i]["primary_specialty"],), cases[i]["language"], "synthetic")
            for i in rows
        ]
        sets[split] = {"synthetic": LabelledSet(synthetic, vectors[rows], rows)}
        for corpus in config.corpora if split != "test" or score_test else ():
            items = mtsamples_specialties(split) if corpus == "mtsamples" else codiesp_specialties(split)
            progress.stage(f"encoding {corpus} {split}", len(items))
            sets[split][corpus] = LabelledSet(items, _encode(encoder, [x.text for x in items], progress), [])
    return TrainingData(cases, labels, texts, splits, vectors, sets)


def train(
    config: TrainingConfig,
    world_dir: Path,
    encoder: Encoder,
    *,
    encoder_spec: str,
    data: TrainingData | None = None,
    progress: Progress | None = None,
    score_test: bool = False,
) -> TrainingResult:
    progress = progress or NoProgress()
    timer = _Timer()
    if data is None:
        data = load_training_data(config, world_dir, encoder, progress, score_test=score_test)
    cases, labels, texts, splits, vectors = data.cases, data.labels, data.texts, data.splits, data.vectors
    sets = data.sets
    timer.lap("encode")

    progress.stage("specialty router", 2)
    zero_shot = ZeroShotSpecialties.embed(encoder) if config.specialty.zero_shot else None
    router = SpecialtyRouter(config.specialty, zero_shot)
    train_items, train_vectors = _pooled(sets["train"])
    router.fit([x.text for x in train_items], train_vectors, [x.specialties for x in train_items])
    progress.advance()
    dev_items, dev_vectors = _pooled(sets["dev"])
    source_size = {source: len(t.items) for source, t in sets["dev"].items()}
    router.calibrate(
        [x.text for x in dev_items],
        dev_vectors,
        [x.specialties for x in dev_items],
        sample_weight=[1.0 / source_size[x.source] for x in dev_items],  # each source counts equally
    )
    progress.advance()
    timer.lap("specialty")

    progress.stage("urgency", 1)
    urgency = UrgencyModel(config.urgency)
    level = {i: labels[i]["urgency"] for i in range(len(cases))}
    urgency.fit(
        [texts[i] for i in sets["train"]["synthetic"].rows],
        [level[i] for i in sets["train"]["synthetic"].rows],
    )
    urgency.calibrate(
        [texts[i] for i in sets["dev"]["synthetic"].rows], [level[i] for i in sets["dev"]["synthetic"].rows]
    )
    progress.advance()
    timer.lap("urgency")

    held_out = sets["dev"]["synthetic"].rows + sets["test"]["synthetic"].rows
    neighbour_rows, neighbour_sims = nearest_resolved(world_dir, vectors, held_out)
    progress.stage("replaying the interaction log", len(held_out))
    _, examples = replay_world(
        world_dir,
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

    novelty = NoveltyScorer(config.novelty).fit(
        _similarity_matrix(neighbour_sims, sets["dev"]["synthetic"].rows)
    )
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
    for split in scored_splits:
        metrics[split] = evaluate_split(
            bundle,
            sets[split],
            *scored[split],
            _similarity_matrix(neighbour_sims, sets[split]["synthetic"].rows),
            rarely_seen=_rarely_seen(cases, labels, splits, split, world_dir),
            level=[level[i] for i in sets[split]["synthetic"].rows],
            synthetic_slices=_synthetic_slices(
                sets[split]["synthetic"].rows, sets["train"]["synthetic"].rows, cases, labels
            ),
        )
        progress.advance()
    timer.lap("evaluate")
    sizes = {f"{split}.{source}": len(t.items) for split, d in sets.items() for source, t in d.items()}
    return TrainingResult(bundle, metrics, by_split, sizes, timer.laps)


def training_data_hash(world_dir: Path, corpora: Sequence[Corpus]) -> str:
    """One digest of every input file a run reads (world tables, corpus CSVs): a run's data identity."""
    files = sorted(world_dir.glob("*.parquet")) + [CORPUS_FILES[c] for c in sorted(corpora)]
    return sha256_files(files)[:16]


def evaluate_split(
    bundle: RoutingBundle,
    data: dict[str, LabelledSet],
    ranker: DoctorRanker,
    examples: Sequence[RankingExample],
    neighbour_similarities: npt.NDArray[np.float64],
    *,
    rarely_seen: npt.NDArray[np.bool_],
    level: Sequence[str],
    synthetic_slices: dict[str, npt.NDArray[np.bool_]],
) -> Metrics:
    """Every metric of one split; `synthetic_slices` name subsets of the synthetic cases to score apart.

    `ranker` scores the doctor `examples`: one that never learned from them.
    """
    metrics: Metrics = {}
    for source, texts in data.items():
        probabilities = bundle.router.predict_proba([x.text for x in texts.items], texts.vectors)
        label_sets = [x.specialties for x in texts.items]
        metrics |= specialty_metrics(probabilities, label_sets, prefix=f"specialty.{source}")
        if source == "synthetic":
            for name, keep in synthetic_slices.items():
                if keep.any():
                    metrics |= specialty_metrics(
                        probabilities[keep],
                        [label_sets[i] for i in np.flatnonzero(keep)],
                        prefix=f"specialty.{name}",
                    )
    metrics |= doctor_metrics(examples, lambda e: ranker.score(e.features), prefix="doctors.holdout.model")
    metrics |= doctor_metrics(
        examples,
        lambda e: apply_rules(ranker.score(e.features), e.features, bundle.rules),
        prefix="doctors.holdout.served",
    )
    metrics |= activity_baseline_metrics(examples, prefix="doctors.holdout.activity_baseline")
    synthetic = [x.text for x in data["synthetic"].items]
    urgency = bundle.urgency.predict_proba(synthetic)
    metrics |= urgency_metrics(urgency, level, bundle.urgency.levels(urgency), prefix="urgency")
    metrics |= novelty_metrics(bundle.novelty.score(neighbour_similarities), rarely_seen, prefix="novelty")
    return metrics


def _synthetic_slices(
    rows: Sequence[int], train_rows: Sequence[int], cases: list[dict[str, Any]], labels: list[dict[str, Any]]
) -> dict[str, npt.NDArray[np.bool_]]:
    """Per language, and posts written from a presentation no training post used (the harder slice:
    the world has only 4-7 written presentations per condition)."""
    seen = {(labels[i]["condition_id"], labels[i]["presentation_index"]) for i in train_rows}
    return {
        "synthetic_en": np.array([cases[i]["language"] == "en" for i in rows]),
        "synthetic_es": np.array([cases[i]["language"] == "es" for i in rows]),
        "synthetic_new_presentation": np.array(
            [(labels[i]["condition_id"], labels[i]["presentation_index"]) not in seen for i in rows]
        ),
    }


def _rarely_seen(
    cases: list[dict[str, Any]], labels: list[dict[str, Any]], splits: list[str], split: str, world_dir: Path
) -> npt.NDArray[np.bool_]:
    """Per case of `split`: at most RARELY_SEEN cases of its condition were resolved before it was posted."""
    row_of = {c["case_id"]: i for i, c in enumerate(cases)}
    resolved: dict[object, list[float]] = {}
    for r in read_table(world_dir, "resolutions").select(["case_id", "resolved_at"]).to_pylist():
        condition = labels[row_of[r["case_id"]]]["condition_id"]
        resolved.setdefault(condition, []).append(r["resolved_at"].timestamp())
    times = {condition: np.sort(t) for condition, t in resolved.items()}
    none = np.zeros(0)
    return np.array(
        [
            np.searchsorted(times.get(labels[i]["condition_id"], none), cases[i]["created_at"].timestamp())
            <= RARELY_SEEN
            for i, s in enumerate(splits)
            if s == split
        ]
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
