"""Cross-lingual retrieval tasks: parallel corpora, and same-condition cases in the synthetic world."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.data.synthetic import RAW, SyntheticWorld
from ml.embeddings.base import Encoder
from ml.evaluation.corpora import ParallelDoc
from ml.index.slots import CaseMeta
from ml.matching import CaseText, Matcher, post_text
from ml.routing.engine import OTHER_LANGUAGE_CASES
from ml.synthetic.splits import PERIODS


@dataclass(frozen=True)
class RetrievalTask:
    name: str
    corpus: list[CaseText]
    queries: list[str]
    relevant: list[set[str]]  # per query, the corpus ids that count as right


def parallel_task(docs: Sequence[ParallelDoc], *, direction: str, name: str) -> RetrievalTask:
    """Each query (one language) should find its own translation among all of the other language."""
    if direction not in ("es->en", "en->es"):
        raise ValueError(f"direction {direction!r} is not 'es->en' or 'en->es'")
    to_english = direction == "es->en"
    corpus = [
        CaseText(
            d.doc_id, d.english if to_english else d.spanish, CaseMeta(True, "en" if to_english else "es")
        )
        for d in docs
    ]
    queries = [d.spanish if to_english else d.english for d in docs]
    return RetrievalTask(name, corpus, queries, [{d.doc_id} for d in docs])


def synthetic_task(
    world_dir: Path, *, split: str, max_queries: int = 400, seed: int = 0, mixed: bool = False
) -> RetrievalTask:
    """Spanish cases posted in `split`'s months (`ml.synthetic.splits`) should find an English
    resolved case of the same condition among the English cases resolved before those months.

    The English and Spanish presentations of a condition were written independently, so this
    measures cross-lingual matching, not shared wording. `mixed`: the index also holds the
    Spanish cases resolved before those months, as the service's does; they compete with the
    English ones but do not count as finds, so this measures whether the English report still
    surfaces when Spanish posts share the query's everyday words.
    """
    start, end = PERIODS[split]
    world = SyntheticWorld(world_dir, deidentify=RAW).read()
    condition = {case_id: truth.condition_id for case_id, truth in world.truth.items()}
    resolved_at = {r.case_id: r.resolved_at for r in world.resolutions}
    languages = ("en", "es") if mixed else ("en",)
    corpus = [
        CaseText(c.case_id, post_text(c.title, c.text), CaseMeta(True, c.language))
        for c in world.cases
        if c.language in languages and c.case_id in resolved_at and resolved_at[c.case_id] < start
    ]
    by_condition: dict[str, set[str]] = defaultdict(set)
    for case in corpus:
        if case.meta.language == "en":
            by_condition[condition[case.case_id]].add(case.case_id)
    candidates = [
        c
        for c in world.cases
        if c.language == "es" and start <= c.created_at < end and by_condition[condition[c.case_id]]
    ]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(candidates), size=min(max_queries, len(candidates)), replace=False))
    queries = [candidates[i] for i in chosen]
    index = " (index of both languages)" if mixed else ""
    return RetrievalTask(
        f"synthetic {split}: es case -> en case of the same condition{index}",
        corpus,
        [post_text(q.title, q.text) for q in queries],
        [by_condition[condition[q.case_id]] for q in queries],
    )


def served_rankings(
    task: RetrievalTask, encoder: Encoder, *, query_language: str, k: int = 10
) -> list[list[str]]:
    """Each query's top k case ids, searched as a route call searches: hybrid, lexicon-expanded,
    with one place kept for a case in another language than the query's."""
    matcher = Matcher.empty(encoder)
    matcher.add(task.corpus)
    vectors = encoder.encode_queries(task.queries)
    return [
        [
            hit.case_id
            for hit in matcher.search(
                text, k=k, vector=vector, language=query_language, other_languages=OTHER_LANGUAGE_CASES
            )
        ]
        for text, vector in zip(task.queries, vectors, strict=True)
    ]
