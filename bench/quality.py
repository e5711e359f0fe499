"""Routing quality, every model beside its baselines, in one run (writes bench/quality.md).

Trains exactly what `casematch train` trains (default TrainingConfig) on the synthetic world's
train months + MTSamples train + CodiEsp train; calibration, thresholds and the doctor ranker
use dev; every table below is the test split. Each run appends a row to bench/test_ledger.csv
(bench/test_ledger.py) and the report says how often this script has scored test. Baselines are
fitted on the same train data:
- specialties: majority floor; zero-shot alone (cosine to the specialty descriptions); TF-IDF
  words (1-2 grams) + multinomial logistic regression, uncalibrated (the textbook baseline);
- doctors: random (exact expectation); the 10 most active doctors of the top predicted
  specialty; and a ceiling: ranking by the behaviour model's hidden answer rates (activity,
  speed, fit, favourites, language), which no model of observable data can beat on average;
- replay: time to first answer when nobody is notified (broadcast) versus notifying each
  policy's top 10 (push modelled as a 3x answer hazard: an assumption, see ml/evaluation/replay.py);
- urgency: the same classifier without the dev-chosen emergent threshold, and "always urgent".

    .venv/bin/python bench/quality.py [--world data/synthetic/world]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import numpy.typing as npt
from test_ledger import record_test_use, usage_sentence

from ml.data.synthetic import SyntheticWorld
from ml.embeddings import load_encoder
from ml.evaluation.ranking import random_rank_metrics, rank_metrics
from ml.evaluation.replay import LatentWorld, ReplayCase, first_answer_hours, rebuild_latent_world, summarise
from ml.models.doctor_ranker import apply_rules
from ml.models.specialty import SpecialtyRouter, SpecialtyRouterConfig, majority_ranking
from ml.models.urgency import LEVELS, threshold_for_precision
from ml.models.zero_shot import ZeroShotSpecialties
from ml.paths import SYNTHETIC_DIR
from ml.privacy.batch import DeidentifiedCache, packaged_fingerprint
from ml.synthetic.knowledge import load_knowledge_base
from ml.taxonomy import load_taxonomy
from ml.training.evaluate import specialty_metrics, urgency_metrics
from ml.training.interactions import RankingExample
from ml.training.pipeline import (
    RARELY_SEEN,
    LabelledSet,
    TrainingConfig,
    TrainingData,
    TrainingResult,
    load_training_data,
    train,
)

BENCH_DIR = Path(__file__).resolve().parent
BASELINE = SpecialtyRouterConfig(model="logistic", c=10.0, char_features=0, zero_shot=False, max_iter=300)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, default=SYNTHETIC_DIR / "world")
    parser.add_argument("--cache", type=Path, default=Path("var/embeddings.sqlite"), help="embedding cache")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "quality.md")
    args = parser.parse_args()
    encoder = load_encoder("use", threads=1, cache_path=args.cache)
    config = TrainingConfig()
    started = time.perf_counter()
    cache = DeidentifiedCache(args.cache.with_name("deidentified.sqlite"), packaged_fingerprint())
    world = SyntheticWorld(args.world, cache=cache)  # posts de-identified, as the store keeps them
    platform = world.read()
    cache.close()
    data = load_training_data(config, platform, world.split, encoder, score_test=True)
    log(f"data ready in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    result = train(config, platform, world.split, encoder, encoder_spec="use", data=data, score_test=True)
    log(f"trained in {time.perf_counter() - started:.0f} s: {result.seconds}")

    specialties, headline = specialty_section(
        result, data, encoder_zero_shot=ZeroShotSpecialties.embed(encoder)
    )
    doctors, headline["doctors.first_recall@10"] = doctor_section(result, args.world)
    urgency, headline["urgency.emergent_recall"] = urgency_section(
        result, data, data.urgency_labels(data.rows_of("test"))
    )
    sections = [specialties, doctors, urgency, novelty_section(result)]
    uses = record_test_use("bench/quality.py", "test", headline, note=f"world {args.world.name}")
    sizes = ", ".join(f"{k} {v:,}" for k, v in result.sizes.items())
    header = [
        "# Routing quality",
        "",
        f"Command: `.venv/bin/python bench/quality.py` (world `{args.world.name}`, from `casematch synth`). "
        f"Texts per split and source: {sizes}. Everything below is the **test** split. "
        + usage_sentence(uses)
        + " Training: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in result.seconds.items())
        + f" ({len(os.sched_getaffinity(0))} core(s)).",
        "",
    ]
    args.out.write_text("\n".join(header + sections))
    log(f"wrote {args.out}")


# --- specialties -------------------------------------------------------------------------------------


# Slice of the specialty table -> its key in the ledger's headline (casematch router, hit@3).
HEADLINE_SLICES = {
    "synthetic, all": "synthetic",
    "synthetic, English": "synthetic_en",
    "synthetic, Spanish": "synthetic_es",
    "synthetic, presentation unseen in train": "synthetic_unseen",
    "MTSamples (English, real)": "mtsamples",
    "CodiEsp (Spanish, real)": "codiesp",
}


def specialty_section(
    result: TrainingResult, data: TrainingData, *, encoder_zero_shot: ZeroShotSpecialties
) -> tuple[str, dict[str, float]]:
    """The specialty table, and the router's hit@3 per slice for the ledger."""
    sets = data.sets
    codes = load_taxonomy().codes
    train_items = [x for s in sets["train"].values() for x in s.items]
    train_vectors = np.concatenate([s.vectors for s in sets["train"].values()])
    started = time.perf_counter()
    baseline = SpecialtyRouter(BASELINE).fit(
        [x.text for x in train_items], train_vectors, [x.specialties for x in train_items]
    )
    log(f"baseline fitted in {time.perf_counter() - started:.0f} s")
    floor = majority_ranking([x.specialties for x in train_items])
    floor_p = np.zeros(len(codes))
    floor_p[[codes.index(c) for c in floor]] = [0.5, 0.3, 0.2]

    test = sets["test"]
    synthetic = test["synthetic"]
    slices: dict[str, tuple[LabelledSet, npt.NDArray[np.bool_]]] = {
        "synthetic, all": (synthetic, np.ones(len(synthetic.items), dtype=bool)),
        "synthetic, English": (synthetic, np.array([x.language == "en" for x in synthetic.items])),
        "synthetic, Spanish": (synthetic, np.array([x.language == "es" for x in synthetic.items])),
        "synthetic, presentation unseen in train": (synthetic, _new_presentation_mask(data, synthetic)),
        "MTSamples (English, real)": (test["mtsamples"], np.ones(len(test["mtsamples"].items), dtype=bool)),
        "CodiEsp (Spanish, real)": (test["codiesp"], np.ones(len(test["codiesp"].items), dtype=bool)),
    }
    models: dict[str, Callable[[LabelledSet], npt.NDArray[np.float64]]] = {
        "majority floor": lambda s: np.tile(floor_p, (len(s.items), 1)),
        "zero-shot alone": lambda s: _softmax(40.0 * encoder_zero_shot.similarities(s.vectors)),
        "TF-IDF + LR (baseline)": lambda s: baseline.predict_proba([x.text for x in s.items], s.vectors),
        "casematch router": lambda s: result.bundle.router.predict_proba(
            [x.text for x in s.items], s.vectors
        ),
    }
    rows = []
    headline: dict[str, float] = {}
    for slice_name, (labelled, keep) in slices.items():
        labels = [labelled.items[i].specialties for i in np.flatnonzero(keep)]
        for model_name, predict in models.items():
            p = predict(labelled)[keep]
            m = specialty_metrics(p, labels, prefix="s")
            ece = "-" if model_name in ("majority floor", "zero-shot alone") else f"{m['s.ece']:.4f}"
            if model_name == "casematch router":
                headline[f"{HEADLINE_SLICES[slice_name]}.hit@3"] = m["s.hit@3"]
            rows.append(
                f"| {slice_name} | {model_name} | {len(labels)} | {m['s.hit@1']:.3f} | {m['s.hit@3']:.3f} | "
                f"{m['s.macro_f1']:.3f} | {ece} |"
            )
        log(rows[-1])
    a, b = result.bundle.router.weights
    markdown = "\n".join(
        [
            "## Specialties",
            "",
            "hit@k: a top-k code is one of the case's codes (synthetic: the condition's primary specialty; "
            "MTSamples: any mapped code; CodiEsp: the journal's specialty). macro-F1 of the top code over "
            "the true codes. ECE over every (case, code) probability (15 bins). The casematch router is a "
            "linear SVM over TF-IDF words + character n-grams blended with zero-shot similarity to "
            f"bilingual specialty descriptions, calibrated on dev (weights a={a:.2f}, b={b:.2f}).",
            "",
            "| test slice | model | cases | hit@1 | hit@3 | macro-F1 | ECE |",
            "|---|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )
    return markdown, headline


def _new_presentation_mask(data: TrainingData, synthetic: LabelledSet) -> npt.NDArray[np.bool_]:
    """Posts written from a presentation that no training-month post used."""
    truth, cases = data.platform.truth, data.platform.cases
    pair = [(truth[c.case_id].condition_id, truth[c.case_id].presentation_index) for c in cases]
    seen = {pair[i] for i in data.sets["train"]["synthetic"].rows}
    return np.array([pair[i] not in seen for i in synthetic.rows])


def _softmax(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(z / z.sum(axis=1, keepdims=True), dtype=np.float64)


# --- doctors -----------------------------------------------------------------------------------------


def doctor_section(result: TrainingResult, world_dir: Path) -> tuple[str, float]:
    """The doctor tables, and the served ranking's first-answerer recall@10 for the ledger."""
    examples = result.examples["test"]
    bundle = result.bundle
    latent = rebuild_latent_world(world_dir, load_knowledge_base())
    n_doctors = len(latent.state.activity)

    def served(e: RankingExample) -> npt.NDArray[np.float64]:
        return apply_rules(bundle.ranker.score(e.features), e.features, bundle.rules)

    cases = _replay_cases(world_dir, examples, latent.condition_index)
    rankings: dict[str, list[npt.NDArray[np.intp]]] = {
        "most active of the top specialty (baseline)": [e.most_active_of_top_specialty for e in examples],
        "casematch ranker": [
            e.candidates[np.argsort(-bundle.ranker.score(e.features), kind="stable")] for e in examples
        ],
        "casematch ranker + serving rules": [
            e.candidates[np.argsort(-served(e), kind="stable")] for e in examples
        ],
        "ceiling: hidden answer rates": [_by_hidden_rate(latent, case) for case in cases],
    }
    rows = [_doctor_row("random", random_rank_metrics(n_doctors - 1), random_rank_metrics(n_doctors - 1))]
    top10: dict[str, list[npt.NDArray[np.intp]]] = {}
    served_recall = float("nan")
    for name, ranked in rankings.items():
        top10[name] = [r[:10] for r in ranked]
        first = [
            _position(r, e.first_answerer)
            for r, e in zip(ranked, examples, strict=True)
            if e.first_answerer is not None
        ]
        accepted = [
            _position(r, e.accepted_answerer)
            for r, e in zip(ranked, examples, strict=True)
            if e.accepted_answerer is not None
        ]
        rows.append(_doctor_row(name, rank_metrics(first), rank_metrics(accepted)))
        if name == "casematch ranker + serving rules":
            served_recall = rank_metrics(first)["recall@10"]
        log(rows[-1])
    candidate_recall = np.mean(
        [e.first_answerer in set(e.candidates.tolist()) for e in examples if e.first_answerer is not None]
    )

    rng = np.random.default_rng(7)
    policies = {
        "random 10 notified": [rng.choice(n_doctors, 10, replace=False) for _ in examples],
        "10 most active of the top specialty notified": top10["most active of the top specialty (baseline)"],
        "casematch top 10 notified": top10["casematch ranker + serving rules"],
    }
    started = time.perf_counter()
    hours = first_answer_hours(latent, cases, policies)
    log(f"replayed {len(cases)} cases x {len(hours)} arms in {time.perf_counter() - started:.0f} s")
    replay_rows = []
    for name, h in hours.items():
        s = summarise(h)
        replay_rows.append(
            f"| {name} | {s['median_hours']:.2f} | {s['within_1h']:.3f} | {s['within_24h']:.3f} |"
        )
    markdown = "\n".join(
        [
            "## Doctors",
            "",
            f"Test months ({len(examples):,} cases). The ranker learned on dev months from features as of "
            "each case's posting time. A relevant doctor outside the candidates counts as a miss "
            f"(the candidates held the first answerer in {candidate_recall:.1%} of cases).",
            "",
            "| ranking | first answerer recall@10 | nDCG@10 | MRR "
            "| accepted answerer recall@10 | nDCG@10 | MRR |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "### Replay: time to first answer",
            "",
            "Same cases, same random draws in every arm; doctors start without history or load "
            "(so absolute times differ from the logged world). Notified doctors answer at 3x their hazard.",
            "",
            "| policy | median hours to first answer | answered within 1 h | within 24 h |",
            "|---|---:|---:|---:|",
            *replay_rows,
            "",
        ]
    )
    return markdown, served_recall


def _doctor_row(name: str, first: dict[str, float], accepted: dict[str, float]) -> str:
    return (
        f"| {name} | {first['recall@10']:.3f} | {first['ndcg@10']:.3f} | {first['mrr']:.3f} | "
        f"{accepted['recall@10']:.3f} | {accepted['ndcg@10']:.3f} | {accepted['mrr']:.3f} |"
    )


def _position(ranked: npt.NDArray[np.intp], target: int | None) -> int | None:
    where = np.flatnonzero(ranked == target)
    return int(where[0]) + 1 if len(where) else None


def _replay_cases(
    world_dir: Path, examples: Sequence[RankingExample], condition_index: dict[str, int]
) -> list[ReplayCase]:
    from ml.synthetic.world import read_table

    cases = {c["case_id"]: c for c in read_table(world_dir, "cases").to_pylist()}
    labels = {r["case_id"]: r for r in read_table(world_dir, "case_labels").to_pylist()}
    slot = {d: i for i, d in enumerate(read_table(world_dir, "doctors").column("doctor_id").to_pylist())}
    return [
        ReplayCase(
            cases[e.case_id]["created_at"],
            labels[e.case_id]["condition_id"],
            cases[e.case_id]["language"],
            slot[cases[e.case_id]["author_id"]],
        )
        for e in examples
    ]


def _by_hidden_rate(latent: LatentWorld, case: ReplayCase) -> npt.NDArray[np.intp]:
    rate = latent.simulator.answer_rates(
        condition=latent.condition_index[case.condition_id], language=case.language, author=case.author
    )
    return np.argsort(-rate, kind="stable")


# --- urgency and novelty -------------------------------------------------------------------------------


def urgency_section(
    result: TrainingResult, data: TrainingData, labelled: Sequence[tuple[int, str]]
) -> tuple[str, float]:
    """The urgency tables on every test case (row, level), and the served model's emergent recall."""
    model = result.bundle.urgency
    texts = [data.texts[i] for i, _ in labelled]
    levels = [level for _, level in labelled]
    p = model.predict_proba(texts)
    arms = {
        "always urgent (floor)": ["urgent"] * len(texts),
        "classifier, likeliest level": [LEVELS[int(np.argmax(row))] for row in p],
        "classifier + dev emergent threshold (served)": model.predict(texts),
    }
    rows, matrices = [], []
    for name, predicted in arms.items():
        m = urgency_metrics(p, levels, predicted, prefix="u")
        cells = [m["u.emergent_recall"], m["u.emergent_precision"], m["u.accuracy"]]
        rows.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
        if name.endswith("(served)"):
            served_recall = m["u.emergent_recall"]
            matrices = [
                f"| {actual} | "
                + " | ".join(f"{m[f'u.confusion.{actual}.{said}']:.0f}" for said in LEVELS)
                + " |"
                for actual in LEVELS
            ]
            ece = m["u.ece"]
    truth = np.array([lvl == "emergent" for lvl in levels])
    at_precision = []
    for target in (0.8, 0.9, 0.95):
        cut = threshold_for_precision(p[:, 0], truth, target)
        recall = float(((p[:, 0] >= cut) & truth).sum() / truth.sum()) if cut is not None else 0.0
        at_precision.append(f"{recall:.3f} at precision {target}")
    threshold = model.emergent_threshold
    markdown = "\n".join(
        [
            "## Urgency (synthetic test; the real corpora have no urgency labels)",
            "",
            "Labels are the condition's urgency in the knowledge base. Emergent threshold chosen on dev for "
            f"precision >= {model.config.min_precision} (threshold {_rounded(threshold)}). Best emergent "
            f"recall reachable on test: {', '.join(at_precision)}. ECE of the probabilities: {ece:.4f}.",
            "",
            "| model | emergent recall | emergent precision | accuracy |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            "Confusion matrix of the served model (rows: truth; columns: predicted):",
            "",
            "| truth \\ predicted | " + " | ".join(LEVELS) + " |",
            "|---|---:|---:|---:|",
            *matrices,
            "",
        ]
    )
    return markdown, served_recall


def _rounded(value: float | None) -> str:
    return "none: likeliest level" if value is None else f"{value:.3f}"


def novelty_section(result: TrainingResult) -> str:
    test = result.metrics["test"]
    auc = test.get("novelty.rarely_seen_auc")
    return "\n".join(
        [
            "## Novelty",
            "",
            f"Test cases whose condition had at most {RARELY_SEEN} resolved cases before them: "
            f"{test['novelty.rarely_seen_cases']:.0f}. "
            + (
                f"ROC AUC of the novelty score for picking them out: **{auc:.3f}** (random: 0.5)."
                if auc is not None
                else "None or all of them: no AUC."
            ),
            "",
        ]
    )


if __name__ == "__main__":
    main()
