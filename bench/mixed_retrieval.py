"""Similar cases from an index of both languages, as the service holds them.

`bench/retrieval.py` searches English cases only. The service's index holds English and Spanish
cases together, and there a Spanish post's everyday words ("estudios", "comparto") and its
Spanish cases of the same condition can push every English report out of the top 5 — the
mission's plastic-bronchitis example failed exactly so on the committed sample. For Spanish
posts of a split's months, against every case resolved before them (USE + lexicon hybrid, k=5):

- EN@5: an English case of the same condition is in the top 5 (what the mission asks);
- any@5: a case of the same condition, in either language, is in the top 5;
- P@5: the share of the top 5 that are of the same condition.

Variants: document frequencies over the whole index or normalised per language
(`LexicalConfig.per_language_df`), and 0, 1 or 2 results kept for another language
(`CaseIndex.search(other_languages=...)`). The variant the service uses was chosen on the dev
months; the test months are scored for the baseline and that variant only, and every run appends
a row to bench/test_ledger.csv (the report says how many runs have scored test).

    .venv/bin/python bench/mixed_retrieval.py [--world data/synthetic/world]

Writes bench/mixed_retrieval.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from test_ledger import record_test_use, usage_sentence

from ml.embeddings import load_encoder
from ml.embeddings.base import Encoder, Vectors
from ml.evaluation.crosslingual import RetrievalTask, synthetic_task
from ml.index import CaseIndex, IndexConfig, IndexedCase
from ml.index.lexical import LexicalConfig
from ml.lexicon import load_lexicon
from ml.paths import PROJECT_ROOT, SYNTHETIC_DIR
from ml.routing.engine import OTHER_LANGUAGE_CASES
from ml.synthetic.world import read_table

BENCH_DIR = Path(__file__).resolve().parent
K = 5
BASELINE = (False, 0)
SERVED = (LexicalConfig().per_language_df, OTHER_LANGUAGE_CASES)


@dataclass(frozen=True)
class Scores:
    english_at_k: float
    any_at_k: float
    precision_at_k: float


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def score(
    task: RetrievalTask, index: CaseIndex, query_vectors: Vectors, condition: dict[str, str], quota: int
) -> Scores:
    lexicon = load_lexicon()
    english = found = precision = 0.0
    for vector, text, relevant in zip(query_vectors, task.queries, task.relevant, strict=True):
        wanted = condition[next(iter(relevant))]
        hits = index.search(
            vector, lexicon.expand(text), k=K, mode="hybrid", language="es", other_languages=quota
        )
        same = [condition[h.case_id] == wanted for h in hits]
        english += any(h.case_id in relevant for h in hits)
        found += any(same)
        precision += sum(same) / K
    n = len(task.queries)
    return Scores(english / n, found / n, precision / n)


def run_split(
    encoder: Encoder, world: Path, split: str, variants: list[tuple[bool, int]]
) -> dict[tuple[bool, int], Scores]:
    task = synthetic_task(world, split=split, mixed=True)
    condition = {r["case_id"]: r["condition_id"] for r in read_table(world, "case_labels").to_pylist()}
    log(f"{split}: encoding {len(task.corpus)} cases and {len(task.queries)} queries")
    corpus_vectors = encoder.encode_documents([c.text for c in task.corpus])
    query_vectors = encoder.encode_queries(task.queries)
    results = {}
    for per_language_df in sorted({v[0] for v in variants}):
        index = CaseIndex(
            dim=encoder.dim,
            fingerprint=encoder.fingerprint.token,
            config=IndexConfig(lexical=LexicalConfig(per_language_df=per_language_df)),
        )
        index.upsert(
            [
                IndexedCase(c.case_id, v, c.text, c.meta)
                for c, v in zip(task.corpus, corpus_vectors, strict=True)
            ]
        )
        for quota in sorted(q for p, q in variants if p == per_language_df):
            scores = score(task, index, query_vectors, condition, quota)
            results[(per_language_df, quota)] = scores
            log(f"  {split} per_language_df={per_language_df} other_languages={quota}: {scores}")
    return results


def rows(split: str, results: dict[tuple[bool, int], Scores]) -> list[str]:
    out = []
    for (per_language_df, quota), s in results.items():
        marks = []
        if (per_language_df, quota) == BASELINE:
            marks.append("baseline")
        if (per_language_df, quota) == SERVED:
            marks.append("**served**")
        df = "per language" if per_language_df else "whole index"
        out.append(
            f"| {split} | {df} | {quota} | {s.english_at_k:.3f} | {s.any_at_k:.3f} | "
            f"{s.precision_at_k:.3f} | {', '.join(marks)} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, default=SYNTHETIC_DIR / "world", help="a generated world")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "mixed_retrieval.md")
    args = parser.parse_args()
    encoder = load_encoder("use", threads=2)
    every = [(p, q) for p in (False, True) for q in (0, 1, 2)]
    dev = run_split(encoder, args.world, "dev", every)
    test = run_split(encoder, args.world, "test", [BASELINE, SERVED])
    served, baseline = test[SERVED], test[BASELINE]
    headline = {
        "served.EN@5": served.english_at_k,
        "served.any@5": served.any_at_k,
        "served.P@5": served.precision_at_k,
        "baseline.EN@5": baseline.english_at_k,
    }
    uses = record_test_use("bench/mixed_retrieval.py", "test", headline, note=f"world {args.world.name}")
    world = args.world.relative_to(PROJECT_ROOT) if args.world.is_relative_to(PROJECT_ROOT) else args.world
    report = [
        "# Similar cases from an index of both languages",
        "",
        f"Command: `.venv/bin/python bench/mixed_retrieval.py --world {world}`. Spanish posts of the "
        "synthetic world's dev and test months against every case (English and Spanish) resolved "
        f"before them; USE dense + lexical with the CodiEsp lexicon, fused; top {K}. Test is scored "
        "for the baseline and the served variant only. "
        + usage_sentence(uses, chosen="the served variant was chosen on dev"),
        "",
        "EN@5: an English case of the same condition in the top 5 (the mission's cross-lingual "
        "promise). any@5: a same-condition case in either language. P@5: share of the top 5 of the "
        "same condition.",
        "",
        "| split | document frequencies | other-language results kept | EN@5 | any@5 | P@5 | |",
        "|---|---|---:|---:|---:|---:|---|",
        *rows("dev", dev),
        *rows("test", test),
        "",
    ]
    args.out.write_text("\n".join(report))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
