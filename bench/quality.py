"""Routing quality, side by side (so far: the specialty router).

Trains on the synthetic world's train months + MTSamples train + CodiEsp train (its journal
specialty), and reports the test splits once: the router with the embedding view, the TF-IDF +
logistic regression baseline (the default router: the embedding view added nothing on dev),
and the majority floor; per source and, for the synthetic world, per language.

    .venv/bin/python bench/quality.py [--world data/synthetic/world]

Writes bench/quality.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from ml.embeddings import load_encoder
from ml.evaluation.classification import expected_calibration_error, hit_at_k, macro_f1_top1
from ml.paths import SYNTHETIC_DIR
from ml.training.data import LabelledText, codiesp_specialties, mtsamples_specialties, synthetic_specialties
from ml.training.specialty import SpecialtyRouter, SpecialtyRouterConfig, majority_ranking

BENCH_DIR = Path(__file__).resolve().parent
MODELS = {
    "tf-idf + LR (baseline, default)": SpecialtyRouterConfig(embedding_weight=0.0),
    "tf-idf + USE embedding + LR": SpecialtyRouterConfig(embedding_weight=2.0),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def score(rankings: Sequence[Sequence[str]], items: Sequence[LabelledText]) -> str:
    labels = [x.specialties for x in items]
    return (
        f"{hit_at_k(rankings, labels, 1):.3f} | {hit_at_k(rankings, labels, 3):.3f} | "
        f"{macro_f1_top1(rankings, labels):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, default=SYNTHETIC_DIR / "world")
    parser.add_argument("--cache", type=Path, default=Path("var/embeddings.sqlite"), help="embedding cache")
    args = parser.parse_args()
    encoder = load_encoder("use", threads=1, cache_path=args.cache)
    train = (
        synthetic_specialties(args.world, "train")
        + mtsamples_specialties("train")
        + codiesp_specialties("train")
    )
    synthetic_test = synthetic_specialties(args.world, "test")
    tests = {
        "synthetic test, English": [x for x in synthetic_test if x.language == "en"],
        "synthetic test, Spanish": [x for x in synthetic_test if x.language == "es"],
        "MTSamples test (English)": mtsamples_specialties("test"),
        "CodiEsp test (Spanish)": codiesp_specialties("test"),
    }
    started = time.perf_counter()
    train_vectors = encoder.encode_documents([x.text for x in train])
    test_vectors = {name: encoder.encode_documents([x.text for x in items]) for name, items in tests.items()}
    log(f"encoded in {time.perf_counter() - started:.0f} s")

    rows = []
    floor = majority_ranking([x.specialties for x in train])
    for name, items in tests.items():
        rows.append(
            f"| {name} | majority floor | {len(items)} | {score([floor] * len(items), items)} | - | - |"
        )
    for label, config in MODELS.items():
        started = time.perf_counter()
        router = SpecialtyRouter(config).fit(
            [x.text for x in train], train_vectors, [x.specialties for x in train]
        )
        fit_seconds = time.perf_counter() - started
        log(f"{label}: fitted in {fit_seconds:.0f} s")
        for name, items in tests.items():
            texts = [x.text for x in items]
            probabilities = router.predict_proba(texts, test_vectors[name])
            order = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
            rankings = [[router.codes[j] for j in row] for row in order]
            targets = np.zeros_like(probabilities, dtype=bool)
            for i, item in enumerate(items):
                targets[i, [router.codes.index(c) for c in item.specialties]] = True
            ece = expected_calibration_error(probabilities, targets)
            cells = f"{score(rankings, items)} | {ece:.4f} | {fit_seconds:.0f}"
            rows.append(f"| {name} | {label} | {len(items)} | {cells} |")
            log(rows[-1])
    rows.sort()
    lines = [
        "# Routing quality",
        "",
        "## Specialties",
        "",
        "Command: `.venv/bin/python bench/quality.py` (world: `data/synthetic/world` from `make run`). "
        f"Trained on {len(train):,} texts: synthetic train months, MTSamples train, CodiEsp train; settings "
        "chosen on the dev splits; test splits reported once. hit@k: a top-k code is one of the case's "
        "codes (synthetic: the condition's primary specialty; MTSamples: any mapped code; CodiEsp: the "
        "journal's specialty). ECE over every (case, specialty) probability.",
        "",
        "| test set | model | cases | hit@1 | hit@3 | macro-F1 | ECE | fit s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "The synthetic rows are near the ceiling because train and test months share the same 4-5 "
        "written presentations per condition: they show the router learned the world, not that it "
        "generalises. The real corpora are the honest measure.",
        "",
    ]
    (BENCH_DIR / "quality.md").write_text("\n".join(lines))
    log("wrote bench/quality.md")


if __name__ == "__main__":
    main()
