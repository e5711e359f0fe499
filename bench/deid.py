"""De-identification, old analyzer against new, on real annotators' gold and on planted identifiers.

    taskset -c 0 .venv/bin/python bench/deid.py [--baseline e96789b] [--world DIR] [--split dev]
        [--out FILE]

Run it pinned to ONE core (`taskset -c 0`): the latencies are per post on one core, and the
report says how many cores the run was allowed. Two analyzers see the SAME documents:
- old: `ml/` as it is at `--baseline` (a git ref, default e96789b), unpacked with
  `git archive <ref> ml | tar -x` into a temporary folder;
- new: `ml/` of the working tree, uncommitted changes included.
Each runs in its own worker process (this script with --worker), the old one with PYTHONPATH set
to the temporary folder so that `import ml` is the old code (the worker checks `ml.__file__` and
refuses to run otherwise), the new one with PYTHONPATH set to the project. The workers run one
after the other, never at the same time, with one BLAS/OpenMP thread; each builds a
`Deidentifier` (timed), de-identifies every document one at a time (each call timed) and writes
only redactions and latencies as JSON. This process scores both with the same code from the
working tree (`ml.evaluation.deid.GoldScore`), so the scoring cannot differ between them.

Document sets:
1. MEDDOCAN dev (Spanish) and PhysioNet deid dev (English), real annotators' PHI spans. Always
   dev: their test documents are held out of the project. A gold span is removed when >= 80% of
   its non-space characters are gone; damage is the share of removed non-space characters outside
   every gold span (of any type). Direct identifiers (names, dates, ids, contacts, streets) are
   listed apart from the other types (ages, sex, countries, cities, hospitals, relation words,
   professions, bare years, PhysioNet Location), which should mostly survive.
2. The synthetic world's posts of the `--split` months with the identifiers its generator planted
   (all direct identifiers), scored by the same GoldScore (80% rule); clean-post damage is the
   share of identifier-free posts that lost anything.
3. MTSamples and CodiEsp (Spanish) of the `--split` split: already de-identified by their
   publishers, no gold; redactions per 1,000 words by kind.

The markdown report goes to stdout and to --out (default bench/deid.md for --split dev or test;
a train run only prints). Only a --split test run appends a row to bench/test_ledger.csv (the
planted scores of the test months; the MTSamples and CodiEsp test splits are de-identified too);
dev and train runs append nothing. Targets are those of issue 12.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from test_ledger import current_commit, record_test_use, usage_sentence

if TYPE_CHECKING:
    from ml.evaluation.corpora import GoldDocument
    from ml.evaluation.deid import GoldScore
    from ml.privacy import Redaction

# No `ml` import at module level: the worker must import `ml` from its own PYTHONPATH (old or new
# code), and the parent imports the working tree's scorer inside `compare`.

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
DEFAULT_REPORT = BENCH_DIR / "deid.md"
DEFAULT_BASELINE = "e96789b"
REPORTED_SPLITS = ("dev", "test")  # written to --out (default bench/deid.md); train only prints
GOLD_CORPORA = {"meddocan": ("MEDDOCAN", "es"), "physionet": ("PhysioNet", "en")}
# Issue 12's targets.
TARGET_DIRECT_RECALL = {"meddocan": 0.97, "physionet": 0.95}
TARGET_MAX_DAMAGE = 0.05
TARGET_PLANTED_RECALL = 0.99
TARGET_MAX_CLEAN_DAMAGE = 0.01
TARGET_P50_MS = 10.0
TARGET_P99_MS = 50.0
# One thread for every numeric library a worker may load: latencies are one-core figures.
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def default_world() -> Path:
    world = PROJECT_ROOT / "data" / "synthetic" / "world"
    return world if world.exists() else PROJECT_ROOT / "data" / "synthetic" / "sample"


# ---------------------------------------------------------------------------------------------
# Worker: runs under the old or the new `ml`, returns redactions and timings only.


def worker(in_json: Path, out_json: Path, *, expect_ml: Path) -> None:
    """De-identify every document of `in_json` one at a time; write redactions and latencies."""
    import ml

    ml_file = Path(ml.__file__ or "").resolve()
    if not ml_file.is_relative_to(expect_ml.resolve()):
        raise SystemExit(f"worker imported ml from {ml_file}, expected it under {expect_ml}")
    from ml.privacy import Deidentifier

    sets: dict[str, list[list[str]]] = json.loads(in_json.read_text(encoding="utf-8"))
    started = time.perf_counter()
    deidentifier = Deidentifier()
    construct_seconds = time.perf_counter() - started
    out_sets: dict[str, dict[str, list[Any]]] = {}
    for name, documents in sets.items():
        redactions: list[list[tuple[int, int, str]]] = []
        latencies_ms: list[float] = []
        for n, (text, language) in enumerate(documents, 1):
            started = time.perf_counter()
            result = deidentifier.deidentify(text, language)
            latencies_ms.append((time.perf_counter() - started) * 1000)
            redactions.append([(r.start, r.end, r.kind) for r in result.redactions])
            if n % 250 == 0:
                print(f"  {name}: {n}/{len(documents)}", file=sys.stderr, flush=True)
        out_sets[name] = {"redactions": redactions, "latencies_ms": latencies_ms}
    fingerprint = getattr(deidentifier, "fingerprint", None)  # the new analyzer's model hash
    out = {
        "ml_file": str(ml_file),
        "construct_seconds": construct_seconds,
        "fingerprint": fingerprint if isinstance(fingerprint, str) else None,
        "affinity": sorted(os.sched_getaffinity(0)),
        "sets": out_sets,
    }
    out_json.write_text(json.dumps(out), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Parent: documents, workers, scores, report.


@dataclass(frozen=True, slots=True)
class DocSet:
    key: str
    title: str  # as the report names it, e.g. "MEDDOCAN dev"
    documents: list[GoldDocument]  # real corpora without gold: documents with no spans


@dataclass(frozen=True, slots=True)
class AnalyzerRun:
    """What one worker returned, redactions rebuilt as the working tree's `Redaction`."""

    label: str  # "old" or "new"
    ref: str  # short sha of the baseline, or "working tree"
    ml_file: str
    construct_seconds: float
    fingerprint: str | None
    affinity: list[int]
    redactions: dict[str, list[tuple[Redaction, ...]]]
    latencies_ms: dict[str, list[float]]


def load_sets(world: Path, split: str) -> tuple[dict[str, DocSet], list[str]]:
    """Every document set of the run, and notes on the ones that are missing."""
    from ml.evaluation.corpora import (
        CorpusMissingError,
        GoldDocument,
        load_codiesp,
        load_deid_gold,
        load_mtsamples,
    )
    from ml.evaluation.deid import planted_documents

    sets = {"planted": DocSet("planted", f"synthetic {split} months", planted_documents(world, split))}
    notes = []
    for corpus, (name, _) in GOLD_CORPORA.items():
        try:
            sets[corpus] = DocSet(corpus, f"{name} dev", load_deid_gold(corpus, "dev"))
        except CorpusMissingError as missing:
            notes.append(f"{name} skipped: {missing}")
    try:
        sets["mtsamples"] = DocSet(
            "mtsamples",
            f"MTSamples {split}",
            [GoldDocument(n.doc_id, n.text, "en", (), split) for n in load_mtsamples(split)],
        )
        sets["codiesp"] = DocSet(
            "codiesp",
            f"CodiEsp {split}",
            [GoldDocument(d.doc_id, d.spanish, "es", (), split) for d in load_codiesp(split)],
        )
    except CorpusMissingError as missing:
        notes.append(f"MTSamples/CodiEsp skipped: {missing}")
    return sets, notes


def run_worker(label: str, ref: str, *, ml_root: Path, sets: dict[str, DocSet], work: Path) -> AnalyzerRun:
    """One worker process with `ml_root` first on its path; blocks until it is done."""
    from ml.privacy import Redaction

    in_json, out_json = work / f"{label}-in.json", work / f"{label}-out.json"
    payload = {key: [[d.text, d.language] for d in s.documents] for key, s in sets.items()}
    in_json.write_text(json.dumps(payload), encoding="utf-8")
    env = {**os.environ, **ONE_THREAD, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ml_root)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    command += ["--in-json", str(in_json), "--out-json", str(out_json), "--expect-ml", str(ml_root / "ml")]
    print(f"{label} analyzer ({ref}): worker with PYTHONPATH={ml_root}", file=sys.stderr, flush=True)
    subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=True)
    out = json.loads(out_json.read_text(encoding="utf-8"))
    return AnalyzerRun(
        label=label,
        ref=ref,
        ml_file=out["ml_file"],
        construct_seconds=out["construct_seconds"],
        fingerprint=out["fingerprint"],
        affinity=out["affinity"],
        redactions={
            key: [tuple(Redaction(s, e, k) for s, e, k in doc) for doc in got["redactions"]]
            for key, got in out["sets"].items()
        },
        latencies_ms={key: got["latencies_ms"] for key, got in out["sets"].items()},
    )


def unpack_baseline(ref: str, into: Path) -> str:
    """`ml/` of git ref `ref` unpacked under `into`; returns the ref's short sha."""
    sha = _git("rev-parse", "--short", "--verify", f"{ref}^{{commit}}").decode().strip()
    archive = _git("archive", sha, "ml")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return sha


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, check=True).stdout


def score(
    run: AnalyzerRun,
    docset: DocSet,
    direct_types: frozenset[str],
    *,
    language: str | None = None,
) -> GoldScore:
    """GoldScore of one analyzer on one set (only the documents in `language` when given)."""
    from ml.evaluation.deid import GoldScore

    gold = GoldScore(direct_types)
    for document, redactions in zip(docset.documents, run.redactions[docset.key], strict=True):
        if language is None or document.language == language:
            gold.add(document, redactions)
    return gold


# ---------------------------------------------------------------------------------------------
# Markdown.


def _f3(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"  # NaN: no spans of that kind


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{value:.1%}"


def _share(part: float, whole: float) -> float:
    return part / whole if whole else float("nan")


def target_line(
    what: str, new: float, old: float, target: float, *, at_least: bool, percent: bool = False
) -> str:
    """'what >= target: new X, met (by d) / missed by d; old Y'."""
    show = _pct if percent else _f3
    met = new >= target if at_least else new <= target
    gap = abs(new - target)
    by = f"{100 * gap:.1f} points" if percent else f"{gap:.3f}"
    verdict = f"**met** (by {by})" if met else f"**missed by {by}**"
    sign = ">=" if at_least else "<="
    return f"- {what} {sign} {show(target)}: new {show(new)}, {verdict}; old {show(old)}."


def ms_target_line(what: str, new: float, old: float, target: float) -> str:
    met = new <= target
    verdict = f"**met** (by {target - new:.1f} ms)" if met else f"**missed by {new - target:.1f} ms**"
    return f"- {what} <= {target:.0f} ms: new {new:.1f} ms, {verdict}; old {old:.1f} ms."


def gold_types_tables(old: GoldScore, new: GoldScore) -> list[str]:
    """Per gold type, removed/total for both analyzers; direct identifiers, then the rest."""
    direct = sorted((t for t in new.spans if t in new.direct_types), key=lambda t: -new.spans[t])
    rest = sorted((t for t in new.spans if t not in new.direct_types), key=lambda t: -new.spans[t])
    header = [
        "| gold type | spans | removed old | removed new | recall old | recall new |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def rows(types: Sequence[str], total_label: str) -> list[str]:
        lines = [
            f"| {t} | {new.spans[t]} | {old.removed[t]} | {new.removed[t]} "
            f"| {_f3(old.recall({t}))} | {_f3(new.recall({t}))} |"
            for t in types
        ]
        spans = sum(new.spans[t] for t in types)
        lines.append(
            f"| **{total_label}** | {spans} | {sum(old.removed[t] for t in types)} "
            f"| {sum(new.removed[t] for t in types)} | {_f3(old.recall(types))} | {_f3(new.recall(types))} |"
        )
        return lines

    lines = ["Direct identifiers (must be removed):", "", *header, *rows(direct, "direct identifiers"), ""]
    if rest:
        lines += [
            "Other types (ages, sex, countries, cities, hospitals, relation words, professions, bare "
            "years...): these SHOULD mostly survive, so here a lower share removed is better (removing "
            "them is not counted as damage):",
            "",
            *header,
            *rows(rest, "other types"),
            "",
        ]
    return lines


def kinds_table(old: GoldScore, new: GoldScore, kinds_order: Sequence[str]) -> list[str]:
    """Per our redaction kind: removed characters and the share of them inside gold, old and new."""
    seen = set(old.removed_chars) | set(new.removed_chars)
    kinds = [k for k in kinds_order if k in seen] + sorted(seen - set(kinds_order))
    lines = [
        "| our kind | chars removed old | inside gold old | chars removed new | inside gold new |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        cells = []
        for score_ in (old, new):
            removed = score_.removed_chars[kind]
            inside = _share(removed - score_.outside_chars[kind], removed)
            cells += [str(removed), _pct(inside)]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    cells = []
    for score_ in (old, new):
        removed = sum(score_.removed_chars.values())
        cells += [str(removed), _pct(1 - score_.damage() if removed else float("nan"))]
    lines.append("| **all** | " + " | ".join(f"**{c}**" for c in cells) + " |")
    return [*lines, ""]


def gold_section(
    sets: dict[str, DocSet], old: AnalyzerRun, new: AnalyzerRun, kinds_order: Sequence[str]
) -> tuple[list[str], dict[str, tuple[GoldScore, GoldScore]]]:
    from ml.evaluation.deid import DIRECT_IDENTIFIERS

    scores = {
        corpus: (
            score(old, sets[corpus], DIRECT_IDENTIFIERS[corpus]),
            score(new, sets[corpus], DIRECT_IDENTIFIERS[corpus]),
        )
        for corpus in GOLD_CORPORA
        if corpus in sets
    }
    if not scores:
        return [], scores
    lines = [
        "## Real annotators' gold: MEDDOCAN dev (es) and PhysioNet deid dev (en)",
        "",
        "A gold span is *removed* when >= 80% of its non-space characters are gone; *damage* is the share "
        "of removed non-space characters outside every gold span of any type (removing an age or a "
        "hospital is over-redaction, not damage). Always the dev split, whatever --split says: the "
        "corpora's test documents are held out of the project. The new pipelines were trained on their "
        "train splits and their best epoch chosen on these dev splits, so the new figures are not "
        "held-out estimates.",
        "",
        "| corpus | language | docs | direct spans | direct recall old | direct recall new "
        "| all-types recall old | all-types recall new | damage old | damage new |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for corpus, (o, n) in scores.items():
        name, language = GOLD_CORPORA[corpus]
        direct = sum(c for t, c in n.spans.items() if t in n.direct_types)
        lines.append(
            f"| {name} | {language} | {n.documents} | {direct} | {_f3(o.recall())} | {_f3(n.recall())} "
            f"| {_f3(o.recall(o.spans))} | {_f3(n.recall(n.spans))} "
            f"| {_pct(o.damage())} | {_pct(n.damage())} |"
        )
    lines.append("")
    for corpus, (o, n) in scores.items():
        name, language = GOLD_CORPORA[corpus]
        lines += [f"### {name} dev ({language}): per gold type", "", *gold_types_tables(o, n)]
        lines += [
            f"### {name} dev ({language}): per our kind",
            "",
            "Characters each kind removed and the share of them inside some gold span (precision by "
            "characters; the rest is damage).",
            "",
            *kinds_table(o, n, kinds_order),
        ]
    return lines, scores


def planted_section(
    docset: DocSet, old: AnalyzerRun, new: AnalyzerRun, *, world: str, split: str, kinds_order: Sequence[str]
) -> tuple[list[str], tuple[GoldScore, GoldScore]]:
    from ml.evaluation.deid import DIRECT_IDENTIFIERS

    direct = DIRECT_IDENTIFIERS["planted"]
    overall = (score(old, docset, direct), score(new, docset, direct))
    languages = sorted({d.language for d in docset.documents})
    rows = [
        (lang, score(old, docset, direct, language=lang), score(new, docset, direct, language=lang))
        for lang in languages
    ]
    rows.append(("**all**", *overall))
    lines = [
        f"## Synthetic planted identifiers: {world}, {split} months",
        "",
        "The world's posts of the split's months; the identifiers its generator planted are the gold "
        "(all of them direct identifiers). Scored by the same GoldScore as the real gold: a planted span "
        "is removed when >= 80% of its non-space characters are gone (the 80% rule; the earlier 90%/50% "
        "rules of this script are gone); damage is the share of removed characters outside every "
        "planted span; clean-post damage is the share of identifier-free posts that lost anything.",
        "",
        "| language | posts | planted | recall old | recall new | damage old | damage new "
        "| identifier-free posts | touched old | touched new "
        "| clean-post damage old | clean-post damage new |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lang, o, n in rows:
        lines.append(
            f"| {lang} | {n.documents} | {sum(n.spans.values())} | {_f3(o.recall())} | {_f3(n.recall())} "
            f"| {_pct(o.damage())} | {_pct(n.damage())} | {n.clean_documents} | {o.touched_clean_documents} "
            f"| {n.touched_clean_documents} | {_pct(o.clean_damage())} | {_pct(n.clean_damage())} |"
        )
    lines += ["", "### Per planted type", "", *gold_types_tables(*overall)]
    lines += ["### Per our kind", "", *kinds_table(*overall, kinds_order)]
    return lines, overall


def real_section(
    sets: dict[str, DocSet], old: AnalyzerRun, new: AnalyzerRun, kinds_order: Sequence[str]
) -> list[str]:
    keys = [k for k in ("mtsamples", "codiesp") if k in sets]
    if not keys:
        return []
    counts: dict[tuple[str, str], Counter[str]] = {}
    touched: dict[tuple[str, str], int] = {}
    words = {k: sum(len(d.text.split()) for d in sets[k].documents) for k in keys}
    for key in keys:
        for run in (old, new):
            docs = run.redactions[key]
            counts[key, run.label] = Counter(r.kind for doc in docs for r in doc)
            touched[key, run.label] = sum(bool(doc) for doc in docs)
    seen = set().union(*counts.values())
    kinds = [k for k in kinds_order if k in seen] + sorted(seen - set(kinds_order))
    columns = [(k, label) for k in keys for label in ("old", "new")]
    lines = [
        "## Real clinical text without gold: MTSamples (en) and CodiEsp (es)",
        "",
        "Both corpora were de-identified by their publishers, so every redaction here is either damage "
        "or an identifier they left in (visit dates, doctors' names, CodiEsp's corresponding author's "
        "e-mail). Redactions per 1,000 words.",
        "",
        "| | " + " | ".join(f"{sets[k].title} {label}" for k, label in columns) + " |",
        "|---|" + "---:|" * len(columns),
        "| docs (words) | " + " | ".join(f"{len(sets[k].documents)} ({words[k]})" for k, _ in columns) + " |",
        "| docs with any redaction | "
        + " | ".join(
            f"{touched[k, label]} ({_pct(_share(touched[k, label], len(sets[k].documents)))})"
            for k, label in columns
        )
        + " |",
        *(
            f"| {kind} /1k words | "
            + " | ".join(f"{1000 * counts[k, label][kind] / words[k]:.2f}" for k, label in columns)
            + " |"
            for kind in kinds
        ),
        "",
    ]
    return lines


def speed_section(sets: dict[str, DocSet], old: AnalyzerRun, new: AnalyzerRun) -> list[str]:
    lines = [
        "## Speed",
        "",
        "Each call to `deidentify` timed alone, one document at a time, in a worker pinned to "
        f"{_cores(new.affinity)} with one BLAS/OpenMP thread; the old and the new worker ran one after the "
        "other, never at the same time. A gold or corpus document is a whole report or note, much "
        "longer than a post.",
        "",
        "| documents | n | mean chars | p50 old (ms) | p50 new | p99 old | p99 new | mean old | mean new |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, docset in sets.items():
        o, n = np.array(old.latencies_ms[key]), np.array(new.latencies_ms[key])
        if not len(n):
            continue
        chars = np.mean([len(d.text) for d in docset.documents])
        lines.append(
            f"| {docset.title} | {len(n)} | {chars:.0f} "
            f"| {np.percentile(o, 50):.1f} | {np.percentile(n, 50):.1f} "
            f"| {np.percentile(o, 99):.1f} | {np.percentile(n, 99):.1f} | {o.mean():.1f} | {n.mean():.1f} |"
        )
    lines += [
        "",
        "Constructing the `Deidentifier` (pipelines, recognizers, warm-up): "
        f"old {old.construct_seconds:.1f} s, new {new.construct_seconds:.1f} s.",
        "",
    ]
    return lines


def _cores(affinity: Sequence[int]) -> str:
    cores = ",".join(map(str, affinity))
    return f"one core (CPU {cores})" if len(affinity) == 1 else f"{len(affinity)} cores (CPUs {cores})"


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass(frozen=True, slots=True)
class RunInfo:
    command: str
    baseline: str
    baseline_sha: str
    new_commit: str
    load_start: str
    load_end: str
    seconds: float
    test_uses: int


def render(
    sets: dict[str, DocSet],
    old: AnalyzerRun,
    new: AnalyzerRun,
    notes: Sequence[str],
    info: RunInfo,
    *,
    world: str,
    split: str,
) -> str:
    from ml.privacy import KINDS

    gold_lines, gold = gold_section(sets, old, new, KINDS)
    planted_lines, (p_old, p_new) = planted_section(
        sets["planted"], old, new, world=world, split=split, kinds_order=KINDS
    )
    lat_old, lat_new = old.latencies_ms["planted"], new.latencies_ms["planted"]
    targets = [
        target_line(
            f"{GOLD_CORPORA[c][0]} direct-identifier recall",
            n.recall(),
            o.recall(),
            TARGET_DIRECT_RECALL[c],
            at_least=True,
        )
        for c, (o, n) in gold.items()
    ]
    targets += [
        target_line(
            f"{GOLD_CORPORA[c][0]} damage",
            n.damage(),
            o.damage(),
            TARGET_MAX_DAMAGE,
            at_least=False,
            percent=True,
        )
        for c, (o, n) in gold.items()
    ]
    targets += [
        target_line("planted recall", p_new.recall(), p_old.recall(), TARGET_PLANTED_RECALL, at_least=True),
        target_line(
            "planted clean-post damage",
            p_new.clean_damage(),
            p_old.clean_damage(),
            TARGET_MAX_CLEAN_DAMAGE,
            at_least=False,
            percent=True,
        ),
        ms_target_line(
            "p50 per post (synthetic)",
            float(np.percentile(lat_new, 50)),
            float(np.percentile(lat_old, 50)),
            TARGET_P50_MS,
        ),
        ms_target_line(
            "p99 per post (synthetic)",
            float(np.percentile(lat_new, 99)),
            float(np.percentile(lat_old, 99)),
            TARGET_P99_MS,
        ),
    ]
    tuned = "the recognizers and pipelines were developed on the train months (and the gold dev splits)"
    split_note = (
        usage_sentence(info.test_uses, chosen=tuned)
        if split == "test"
        else f"The {split} months of the world, not its test months (nothing is ledgered for {split})."
    )
    pinned = (
        ""
        if len(new.affinity) == 1
        else " **Not pinned to one core: the latencies are not one-core figures.**"
    )
    lines = [
        "# De-identification: old analyzer against new",
        "",
        f"Command: `{info.command}`",
        "",
        "| | |",
        "|---|---|",
        f"| old analyzer | `{info.baseline_sha}` (--baseline {info.baseline}): `ml/` from `git archive`, "
        f"imported from `{_short_path(old.ml_file)}` |",
        f"| new analyzer | working tree (HEAD `{info.new_commit}`), "
        f"imported from `{_short_path(new.ml_file)}`"
        + (f"; NER models {new.fingerprint[:12]}" if new.fingerprint else "")
        + " |",
        f"| cores | workers pinned to {_cores(new.affinity)} of the machine's {os.cpu_count()} |",
        f"| load (1/5/15 min) | {info.load_start} at start, {info.load_end} at end |",
        f"| runtime | {info.seconds:.0f} s (the two workers one after the other, never concurrently) |",
        "",
        f"{split_note} Both analyzers saw the same documents and were scored by the same code "
        f"(`ml.evaluation.deid.GoldScore` of the working tree).{pinned}",
        "",
        *(f"*{note}*\n" for note in notes),
        "## Targets (issue 12), new analyzer",
        "",
        "Damage targets are on the real gold; speed targets on the synthetic posts on one core.",
        "",
        *targets,
        "",
        *gold_lines,
        *planted_lines,
        *real_section(sets, old, new, KINDS),
        *speed_section(sets, old, new),
    ]
    return "\n".join(lines)


def _short_path(path: str) -> str:
    resolved = Path(path)
    if resolved.is_relative_to(PROJECT_ROOT):
        return resolved.relative_to(PROJECT_ROOT).as_posix()
    return "<tmp>/" + "/".join(resolved.parts[-2:])


def _command_line(argv: Sequence[str]) -> str:
    affinity = sorted(os.sched_getaffinity(0))
    pin = f"taskset -c {affinity[0]} " if len(affinity) == 1 else ""
    python = Path(sys.executable)
    shown = (
        python.relative_to(PROJECT_ROOT).as_posix() if python.is_relative_to(PROJECT_ROOT) else str(python)
    )
    return f"{pin}{shown} bench/deid.py" + (f" {shlex.join(argv)}" if argv else "")


def compare(args: argparse.Namespace, argv: Sequence[str]) -> None:
    load_start, started = _load(), time.perf_counter()
    world: Path = args.world or default_world()
    sets, notes = load_sets(world, args.split)
    with tempfile.TemporaryDirectory(prefix="deid-bench-") as tmp:
        work = Path(tmp)
        (work / "old").mkdir()
        baseline_sha = unpack_baseline(args.baseline, work / "old")
        # One after the other: the two must never share the core.
        old = run_worker("old", baseline_sha, ml_root=work / "old", sets=sets, work=work)
        new = run_worker("new", "working tree", ml_root=PROJECT_ROOT, sets=sets, work=work)
    command = _command_line(argv)
    uses = 0
    if args.split == "test":
        from ml.evaluation.deid import DIRECT_IDENTIFIERS

        p_old = score(old, sets["planted"], DIRECT_IDENTIFIERS["planted"])
        p_new = score(new, sets["planted"], DIRECT_IDENTIFIERS["planted"])
        headline = {
            "new.planted.recall": p_new.recall(),
            "new.planted.damage": p_new.damage(),
            "new.planted.clean_damage": p_new.clean_damage(),
            "old.planted.recall": p_old.recall(),
            "old.planted.clean_damage": p_old.clean_damage(),
        }
        note = f"{command} (old {baseline_sha} vs working tree; MTSamples and CodiEsp test de-identified too)"
        uses = record_test_use("bench/deid.py", args.split, headline, note=note)
    info = RunInfo(
        command=command,
        baseline=args.baseline,
        baseline_sha=baseline_sha,
        new_commit=current_commit(),
        load_start=load_start,
        load_end=_load(),
        seconds=time.perf_counter() - started,
        test_uses=uses,
    )
    markdown = render(sets, old, new, notes, info, world=_short_path(str(world.resolve())), split=args.split)
    out: Path | None = args.out or (DEFAULT_REPORT if args.split in REPORTED_SPLITS else None)
    if out is not None:
        out.write_text(markdown + "\n", encoding="utf-8")
        print(f"report written to {out}", file=sys.stderr)
    print(markdown)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help="git ref of the OLD analyzer (its ml/ is unpacked with git archive; "
        f"default {DEFAULT_BASELINE})",
    )
    parser.add_argument(
        "--world",
        type=Path,
        default=None,
        help="a written synthetic world "
        "(default data/synthetic/world if it exists, else data/synthetic/sample)",
    )
    parser.add_argument(
        "--split",
        choices=("train", "dev", "test"),
        default="dev",
        help="the world's months (and MTSamples/CodiEsp split) to run; the gold corpora are always dev; "
        "only test appends to bench/test_ledger.csv (default dev)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the markdown report (default bench/deid.md for dev and test; train only prints)",
    )
    # Internal: the worker processes this script starts (see the docstring).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--in-json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out-json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--expect-ml", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.in_json, args.out_json, expect_ml=args.expect_ml)
    else:
        compare(args, argv)


if __name__ == "__main__":
    main()
