"""De-identification quality and speed on the synthetic world's planted identifiers.

Every post of one split is de-identified; planted identifiers (`identifiers` table, exact spans)
are the gold standard. A planted span is found when redactions cover >= 90% of its characters;
a redaction is correct when >= 50% of its characters fall inside some planted span. Clinical
damage is the share of identifier-free posts that lost anything. Latency is one post at a time
on one thread.

    taskset -c 0 .venv/bin/python bench/deid.py [--world data/synthetic/world] [--split test]

The recognizers were developed on the `train` months; `test` is the one reported. Writes
bench/deid.md only for the test split (other splits print to stdout); scoring test appends a row
to bench/test_ledger.csv, other splits append nothing.

A second table runs the same split of two real corpora (MTSamples English notes, CodiEsp Spanish
case reports, from ../shared/data when present). Their publishers de-identified them already, so
every redaction there is either clinical damage or a residual identifier; it is counted by kind.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from test_ledger import record_test_use, usage_sentence

from ml.evaluation.corpora import CorpusMissingError, load_codiesp, load_mtsamples
from ml.privacy import KINDS, Deidentifier, Redaction
from ml.synthetic.splits import split_of
from ml.synthetic.world import read_table

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORLD = BENCH_DIR.parent / "data" / "synthetic" / "world"
# The generator's kinds -> the de-identifier's placeholders.
PLANTED_KIND = {"DATE_OF_BIRTH": "DATE", "RECORD_NUMBER": "RECORD_ID"}
FOUND_SHARE = 0.9
CORRECT_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Post:
    case_id: str
    body: str
    language: str
    planted: tuple[Redaction, ...]  # gold spans, kinds already mapped to placeholder kinds


@dataclass
class Tally:
    """Counts for one slice: planted spans found (any kind / right kind), redactions correct."""

    planted: int = 0
    found: int = 0
    found_typed: int = 0
    redactions: int = 0
    correct: int = 0

    def recall(self) -> float:
        return self.found / self.planted if self.planted else float("nan")

    def typed_recall(self) -> float:
        return self.found_typed / self.planted if self.planted else float("nan")

    def precision(self) -> float:
        return self.correct / self.redactions if self.redactions else float("nan")


@dataclass
class Report:
    by_kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_language: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    overall: Tally = field(default_factory=Tally)
    clean_posts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    damaged_posts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    damage_kinds: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies_ms: list[float] = field(default_factory=list)


def load_posts(world: Path, split: str) -> list[Post]:
    cases = read_table(world, "cases").to_pylist()
    planted: dict[str, list[Redaction]] = defaultdict(list)
    for row in read_table(world, "identifiers").to_pylist():
        if row["field"] == "body":
            kind = PLANTED_KIND.get(row["kind"], row["kind"])
            planted[row["case_id"]].append(Redaction(row["start"], row["end"], kind))
    return [
        Post(c["case_id"], c["body"], c["language"], tuple(planted.get(c["case_id"], ())))
        for c in cases
        if split_of(c["created_at"]) == split
    ]


def covered(span: Redaction, by: Iterable[Redaction]) -> int:
    """Characters of `span` inside any of `by` (which are disjoint)."""
    return sum(max(0, min(span.end, b.end) - max(span.start, b.start)) for b in by)


def score_post(post: Post, redactions: Sequence[Redaction], report: Report) -> None:
    for gold in post.planted:
        found = covered(gold, redactions) >= FOUND_SHARE * (gold.end - gold.start)
        typed = covered(gold, [r for r in redactions if r.kind == gold.kind]) >= FOUND_SHARE * (
            gold.end - gold.start
        )
        for tally in (report.by_kind[gold.kind], report.by_language[post.language], report.overall):
            tally.planted += 1
            tally.found += found
            tally.found_typed += typed
    for redaction in redactions:
        correct = covered(redaction, _disjoint(post.planted)) >= CORRECT_SHARE * (
            redaction.end - redaction.start
        )
        for tally in (report.by_kind[redaction.kind], report.by_language[post.language], report.overall):
            tally.redactions += 1
            tally.correct += correct
    if not post.planted:
        report.clean_posts[post.language] += 1
        report.damaged_posts[post.language] += bool(redactions)
        for redaction in redactions:
            report.damage_kinds[redaction.kind] += 1


def _disjoint(spans: Sequence[Redaction]) -> list[Redaction]:
    """Planted spans never overlap, but be safe: merge them before counting characters."""
    merged: list[Redaction] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Redaction(last.start, max(last.end, span.end), last.kind)
        else:
            merged.append(span)
    return merged


def run(deidentifier: Deidentifier, posts: Sequence[Post]) -> Report:
    report = Report()
    for n, post in enumerate(posts, 1):
        started = time.perf_counter()
        result = deidentifier.deidentify(post.body, post.language)
        report.latencies_ms.append((time.perf_counter() - started) * 1000)
        score_post(post, result.redactions, report)
        if n % 500 == 0:
            print(f"{n}/{len(posts)} posts", file=sys.stderr, flush=True)
    return report


@dataclass
class RealCorpus:
    """Redactions on an already de-identified real corpus: no gold, only counts by kind."""

    name: str
    language: str
    docs: int = 0
    words: int = 0
    docs_with_redactions: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def run_real(deidentifier: Deidentifier, split: str) -> list[RealCorpus]:
    try:
        sources = {
            ("MTSamples", "en"): [note.text for note in load_mtsamples(split)],
            ("CodiEsp", "es"): [doc.spanish for doc in load_codiesp(split)],
        }
    except CorpusMissingError as missing:
        print(f"real corpora skipped: {missing}", file=sys.stderr)
        return []
    corpora = []
    for (name, language), texts in sources.items():
        corpus = RealCorpus(name, language)
        for text in texts:
            redactions = deidentifier.deidentify(text, language).redactions
            corpus.docs += 1
            corpus.words += len(text.split())
            corpus.docs_with_redactions += bool(redactions)
            for redaction in redactions:
                corpus.by_kind[redaction.kind] += 1
        corpora.append(corpus)
    return corpora


def render_real(corpora: Sequence[RealCorpus], split: str) -> list[str]:
    if not corpora:
        return []
    return [
        "## Real clinical text (no gold spans)",
        "",
        f"The {split} split of two real corpora that their publishers already de-identified: every "
        "redaction is either damage or an identifier they left in (dates of visits, doctors' names, "
        "the corresponding author's e-mail in CodiEsp). Full dates are removed by design.",
        "",
        "| corpus | language | docs | words | docs with any redaction | "
        + " | ".join(f"{k} /1k words" for k in KINDS)
        + " |",
        "|---|---|---:|---:|---:|" + "---:|" * len(KINDS),
        *(
            f"| {c.name} | {c.language} | {c.docs} | {c.words} | {c.docs_with_redactions} "
            f"({_share(c.docs_with_redactions, c.docs)}) | "
            + " | ".join(f"{1000 * c.by_kind[k] / c.words:.2f}" for k in KINDS)
            + " |"
            for c in corpora
        ),
        "",
    ]


def render(
    report: Report,
    real: Sequence[RealCorpus],
    *,
    command: str,
    split: str,
    n_posts: int,
    load_seconds: float,
    test_uses: int = 0,
) -> str:
    o = report.overall
    tuned = "recognizers were developed and tuned on the train months only"
    lines = [
        "# De-identification",
        "",
        f"Command: `{command}`",
        "",
        f"Synthetic world, **{split}** months ({n_posts} posts, {o.planted} planted identifiers). "
        + (usage_sentence(test_uses, chosen=tuned) if test_uses else tuned.capitalize() + ".")
        + " A planted span is *found* when redactions cover >= 90% of its characters "
        "(whatever placeholder they use; *typed* also requires the right placeholder); a redaction "
        "is *correct* when >= 50% of its characters fall inside a planted span.",
        "",
        f"**Overall: recall {o.recall():.3f} (target >= 0.95), typed recall {o.typed_recall():.3f}, "
        f"precision {o.precision():.3f}.**",
        "",
        "## Per kind",
        "",
        "| kind | planted | recall | typed recall | redactions | precision |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {kind} | {t.planted} | {t.recall():.3f} | {t.typed_recall():.3f} | {t.redactions} "
            f"| {t.precision():.3f} |"
            for kind in KINDS
            for t in [report.by_kind[kind]]
        ),
        f"| **all** | {o.planted} | {o.recall():.3f} | {o.typed_recall():.3f} | {o.redactions} "
        f"| {o.precision():.3f} |",
        "",
        "## Per language",
        "",
        "| language | planted | recall | precision | identifier-free posts | with any redaction (damage) |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {lang} | {t.planted} | {t.recall():.3f} | {t.precision():.3f} | {clean} "
            f"| {damaged} ({_share(damaged, clean)}) |"
            for lang in sorted(report.by_language)
            for t, clean, damaged in [
                (report.by_language[lang], report.clean_posts[lang], report.damaged_posts[lang])
            ]
        ),
        "",
        "Redactions in identifier-free posts, by kind: "
        + (", ".join(f"{k} {v}" for k, v in sorted(report.damage_kinds.items())) or "none")
        + ".",
        "",
        "## Speed",
        "",
        f"One post at a time, one thread: median {np.percentile(report.latencies_ms, 50):.1f} ms, "
        f"p99 {np.percentile(report.latencies_ms, 99):.1f} ms, mean {np.mean(report.latencies_ms):.1f} ms "
        f"per post; constructing the `Deidentifier` (spaCy pipelines, recognizers, warm-up) took "
        f"{load_seconds:.1f} s.",
        "",
        *render_real(real, split),
    ]
    return "\n".join(lines)


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--world", type=Path, default=DEFAULT_WORLD, help="a written synthetic world")
    parser.add_argument("--split", choices=("train", "dev", "test"), default="test")
    args = parser.parse_args()
    posts = load_posts(args.world, args.split)
    started = time.perf_counter()
    deidentifier = Deidentifier()
    load_seconds = time.perf_counter() - started
    report = run(deidentifier, posts)
    real = run_real(deidentifier, args.split)
    world = args.world.resolve()
    world_arg = "" if world == DEFAULT_WORLD.resolve() else f" --world {args.world}"
    command = f"taskset -c 0 .venv/bin/python bench/deid.py{world_arg} --split {args.split}"
    o = report.overall
    headline = {"recall": o.recall(), "typed_recall": o.typed_recall(), "precision": o.precision()}
    uses = record_test_use("bench/deid.py", args.split, headline, note=command)  # 0 off test: no row
    markdown = render(
        report,
        real,
        command=command,
        split=args.split,
        n_posts=len(posts),
        load_seconds=load_seconds,
        test_uses=uses,
    )
    if args.split == "test":
        (BENCH_DIR / "deid.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
