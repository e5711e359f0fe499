"""Index benchmark: build time, memory per case, HNSW recall@10 against exact search, search
latency, single-case upsert latency, and how long searches wait while the index rebuilds
(compaction, exact -> HNSW switch), at 10k, 100k and 1M cases.

Vectors are synthetic but shaped like sentence embeddings: 512-d, L2-normalised, with
neighbourhoods fitted to real USE embeddings of cases (see `embeddings_like`). Queries are fresh
draws from the same distribution. Each case carries the text of a committed sample-world post
(cycled, with its language), so the memory column includes the lexical channel (BM25 segments and
per-language document frequencies) as the service holds it; hybrid searches use a post's text as
the query text. Everything goes through `CaseIndex`'s public methods, so the same script measures
older versions of the index too (run it with PYTHONPATH pointing at their checkout).

Per size, one index goes through the life of a live index:

1. built exact, 10k cases at a time (as live ingest would; `hnsw_above` leaves room for step 2,
   so it stays exact): build time, memory, dense and hybrid search latency, the exact top-10;
2. single-case upserts replacing existing cases (same vector and text), one at a time;
3. `compact()` on a thread while the main thread searches: the longest search during it;
4. an upsert (of cases near no query) on a thread, which takes it past `hnsw_above`: the switch
   to HNSW, while the main thread searches (the longest search, and how long the call took);
5. the HNSW index: recall@10 against the truth per efSearch, dense latency, hybrid latency at
   the service's efSearch, memory; then single-case upserts of new cases.

    taskset -c 1 .venv/bin/python bench/index_bench.py [--sizes 10000,100000] [--label after]
        [--json bench/out.json]
    .venv/bin/python bench/index_bench.py --combine before.json after.json [--out bench/index.md]

(pinned to one core: the latency target is for one core, and the machine stays usable; the
rebuild thread and the searching thread then share that core.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ml.index import CaseIndex, CaseMeta, DenseConfig, IndexConfig, IndexedCase
from ml.matching import post_text
from ml.paths import SAMPLE_WORLD_DIR
from ml.synthetic.world import read_table

BENCH_DIR = Path(__file__).resolve().parent
DIM = 512
EF_SEARCH = (32, 64, 128, 256)
SERVICE_EF = 128  # DenseConfig's default: what the service searches with
TARGET_P99_MS = 5.0
TARGET_RECALL = 0.95
TARGET_BYTES = 4096


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def embeddings_like(n: int, *, seed: int) -> np.ndarray:
    """Vectors whose neighbourhoods look like real case embeddings.

    A shared mean direction (sentence embeddings are anisotropic), topics, sub-topics of about
    10 cases and per-case variation on a 96-d latent space, plus a little ambient noise. The mix
    was fitted to USE embeddings of synthetic cases: mean cosine to the 1st / 10th / 100th
    neighbour about 0.93 / 0.82 / 0.63 and to a random case about 0.50 (real: 0.93 / 0.82 /
    0.63 / 0.49).
    """
    latent = 96
    fixed = np.random.default_rng(0)  # the space itself is the same for every size
    basis = fixed.normal(size=(latent, DIM)).astype(np.float32) / np.sqrt(latent)
    mean = fixed.normal(size=DIM).astype(np.float32)
    mean /= np.linalg.norm(mean)
    topics = max(300, n // 200)
    subtopics = max(1, n // 10)
    topic_centres = np.random.default_rng(1).normal(size=(topics, latent)).astype(np.float32)
    topic_of = np.random.default_rng(2).integers(topics, size=subtopics)
    sub_centres = np.random.default_rng(3).normal(size=(subtopics, latent)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        size = min(100_000, n - start)
        which = rng.integers(subtopics, size=size)
        codes = (
            topic_centres[topic_of[which]]
            + 0.9 * sub_centres[which]
            + 0.6 * rng.normal(size=(size, latent)).astype(np.float32)
        )
        block = codes @ basis + 0.3 * np.sqrt(latent / DIM) * rng.normal(size=(size, DIM)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        block += mean
        out[start : start + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def sample_posts() -> list[tuple[str, CaseMeta]]:
    """The committed sample world's posts (title and body) with their language, as resolved cases."""
    cases = read_table(SAMPLE_WORLD_DIR, "cases").to_pylist()
    return [(post_text(c["title"], c["body"]), CaseMeta(True, c["language"])) for c in cases]


@dataclass
class Search:
    kind: str
    ef_search: int | None
    build_seconds: float
    bytes_per_case: float
    lexical_bytes_per_case: float
    recall_at_10: float
    dense_p50_ms: float
    dense_p99_ms: float
    hybrid_p50_ms: float | None = None
    hybrid_p99_ms: float | None = None


@dataclass
class Writes:
    index: str
    upsert: str
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class Rebuild:
    what: str
    seconds: float
    call_ms: float  # how long the call that caused it (compact / upsert) took
    searches: int
    search_p50_ms: float
    search_p99_ms: float
    longest_search_ms: float


@dataclass
class SizeResult:
    size: int
    searches: list[Search] = field(default_factory=list)
    writes: list[Writes] = field(default_factory=list)
    rebuilds: list[Rebuild] = field(default_factory=list)


def build(vectors: np.ndarray, posts: list[tuple[str, CaseMeta]], *, room: int) -> tuple[CaseIndex, float]:
    """Add the cases live, 10k at a time, into an index that switches to HNSW once it holds
    `room` slots more (a replaced case's old slot counts until a compaction)."""
    config = IndexConfig(dense=DenseConfig(hnsw_above=len(vectors) + room, ef_construction=80))
    index = CaseIndex(dim=DIM, fingerprint="bench", config=config)
    started = time.perf_counter()
    for start in range(0, len(vectors), 10_000):
        chunk = vectors[start : start + 10_000]
        index.upsert(
            [IndexedCase(f"c{start + i}", v, *posts[(start + i) % len(posts)]) for i, v in enumerate(chunk)]
        )
        if start % 100_000 == 0:
            log(f"  built {start + len(chunk):,} in {time.perf_counter() - started:.0f}s")
    assert index.kind == "flat"
    return index, time.perf_counter() - started


def percentiles(latencies: list[float]) -> tuple[float, float]:
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))


def dense_latency(
    index: CaseIndex, queries: np.ndarray, truth: list[set[str]] | None
) -> tuple[float, float, float, list[set[str]]]:
    latencies, recalls, found = [], [], []
    for i, query in enumerate(queries):
        started = time.perf_counter()
        hits = index.search(query, "", k=10, mode="dense")
        latencies.append((time.perf_counter() - started) * 1000)
        found.append({h.case_id for h in hits})
        if truth is not None:
            recalls.append(len(found[-1] & truth[i]) / 10)
    recall = float(np.mean(recalls)) if recalls else 1.0
    return recall, *percentiles(latencies), found


def hybrid_latency(index: CaseIndex, queries: np.ndarray, texts: list[str]) -> tuple[float, float]:
    latencies = []
    for query, text in zip(queries, texts, strict=False):
        started = time.perf_counter()
        index.search(query, text, k=10, mode="hybrid")
        latencies.append((time.perf_counter() - started) * 1000)
    return percentiles(latencies)


def single_upserts(index: CaseIndex, cases: list[IndexedCase]) -> tuple[float, float, float]:
    latencies = []
    for case in cases:
        started = time.perf_counter()
        index.upsert([case])
        latencies.append((time.perf_counter() - started) * 1000)
    return *percentiles(latencies), float(max(latencies))


def wait_until_rebuilt(index: CaseIndex) -> None:
    waiter = getattr(index, "wait_for_rebuild", None)  # older versions rebuild inside the call
    if waiter is not None:
        waiter()


def searching_while(
    index: CaseIndex, action: Any, done: Any, queries: np.ndarray, texts: list[str], *, pause: float
) -> tuple[float, float, int, float, float, float]:
    """Run `action` on a thread and hybrid searches here until `done()`, `pause` seconds apart;
    (rebuild s, call ms, searches, search p50 and p99 ms, longest search ms)."""
    call: dict[str, float] = {}

    def run() -> None:
        started = time.perf_counter()
        action()
        call["ms"] = (time.perf_counter() - started) * 1000

    latencies: list[float] = []
    started = time.perf_counter()
    thread = threading.Thread(target=run)
    thread.start()
    i = 0
    while thread.is_alive() or not done():
        query, text = queries[i % len(queries)], texts[i % len(texts)]
        t = time.perf_counter()
        index.search(query, text, k=10, mode="hybrid")
        latencies.append((time.perf_counter() - t) * 1000)
        i += 1
        time.sleep(pause)
    seconds = time.perf_counter() - started
    thread.join()
    p50, p99 = percentiles(latencies) if latencies else (0.0, 0.0)
    return seconds, call["ms"], len(latencies), p50, p99, max(latencies, default=0.0)


def bytes_per_case(index: CaseIndex) -> tuple[float, float]:
    """All the index holds per case, and the lexical channel's share of it."""
    parts = index.nbytes_by_part()
    return sum(parts.values()) / len(index), parts["lexical"] / len(index)


def run_size(
    size: int,
    posts: list[tuple[str, CaseMeta]],
    *,
    queries: int,
    hybrid_queries: int,
    upserts: int,
    pause: float,
    progress: Any = None,
) -> SizeResult:
    """One size's measurements; `progress(result)` is told after each step (partial results)."""
    result = SizeResult(size)

    def step_done() -> None:
        if progress is not None:
            progress(result)

    cores = len(os.sched_getaffinity(0))
    vectors = embeddings_like(size, seed=size)
    query_vectors = embeddings_like(queries, seed=size + 1)
    texts = [posts[(7 * i + 3) % len(posts)][0] for i in range(queries)]
    faiss.omp_set_num_threads(cores)  # building may use every core we have
    index, build_seconds = build(vectors, posts, room=upserts)
    faiss.omp_set_num_threads(1)  # latency is measured on one core
    memory = bytes_per_case(index)
    _, d50, d99, truth = dense_latency(index, query_vectors, None)
    h50, h99 = hybrid_latency(index, query_vectors[:hybrid_queries], texts)
    result.searches.append(Search("exact", None, build_seconds, *memory, 1.0, d50, d99, h50, h99))
    step_done()
    log(
        f"{size} exact: build {build_seconds:.1f}s, {memory[0]:,.0f} B/case, "
        f"dense p99 {d99:.2f}, hybrid p99 {h99:.2f}"
    )

    rng = np.random.default_rng(size + 3)
    again = sorted(rng.choice(size, size=upserts, replace=False).tolist())
    replacing = [IndexedCase(f"c{i}", vectors[i], *posts[i % len(posts)]) for i in again]
    result.writes.append(Writes("exact", "replace", upserts, *single_upserts(index, replacing)))
    step_done()
    log(
        f"{size} exact replace upserts: p99 {result.writes[-1].p99_ms:.2f}, "
        f"max {result.writes[-1].max_ms:.1f} ms"
    )

    faiss.omp_set_num_threads(cores)  # rebuilds use what they have; searches stay on one thread
    compaction = searching_while(index, index.compact, lambda: True, query_vectors, texts, pause=pause)
    result.rebuilds.append(Rebuild("compaction (exact)", *compaction))
    step_done()
    log(f"{size} compaction: {compaction[0]:.1f}s, longest search {compaction[5]:.1f} ms")

    # cases near no query, so that the truth stays the truth; one more than the room left
    far = -np.mean(vectors[:1000], axis=0) + 0.05 * embeddings_like(upserts + 1, seed=size + 4)
    newcomers = [IndexedCase(f"far{i}", v, "zzzqx", CaseMeta()) for i, v in enumerate(far)]
    switch = searching_while(
        index,
        lambda: index.upsert(newcomers),
        lambda: index.kind == "hnsw",
        query_vectors,
        texts,
        pause=pause,
    )
    wait_until_rebuilt(index)
    result.rebuilds.append(Rebuild("switch exact -> HNSW", *switch))
    step_done()
    log(f"{size} switch: {switch[0]:.1f}s, upsert call {switch[1]:.1f} ms, longest search {switch[5]:.1f} ms")
    faiss.omp_set_num_threads(1)

    memory = bytes_per_case(index)
    for ef in EF_SEARCH:
        index.set_ef_search(ef)
        recall, d50, d99, _ = dense_latency(index, query_vectors, truth)
        hybrid = (
            hybrid_latency(index, query_vectors[:hybrid_queries], texts) if ef == SERVICE_EF else (None, None)
        )
        result.searches.append(
            Search("hnsw", ef, build_seconds + switch[0], *memory, recall, d50, d99, *hybrid)
        )
        log(f"{size} hnsw ef={ef}: recall {recall:.3f} p50 {d50:.2f} p99 {d99:.2f} ms")
        step_done()
    index.set_ef_search(SERVICE_EF)
    fresh = embeddings_like(upserts, seed=size + 2)
    adding = [IndexedCase(f"new{i}", v, *posts[i % len(posts)]) for i, v in enumerate(fresh)]
    result.writes.append(Writes("hnsw", "new case", upserts, *single_upserts(index, adding)))
    log(f"{size} hnsw new upserts: p99 {result.writes[-1].p99_ms:.2f} max {result.writes[-1].max_ms:.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--hybrid-queries", type=int, default=300)
    parser.add_argument("--upserts", type=int, default=300)
    parser.add_argument(
        "--search-pause-ms", type=float, default=0.0, help="between searches while a rebuild runs"
    )
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--json", type=Path, help="write the results here too (for --combine)")
    parser.add_argument("--combine", type=Path, nargs="+", help="render these --json results side by side")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "index.md")
    args = parser.parse_args()
    if args.combine:
        runs = [json.loads(path.read_text()) for path in args.combine]
        rendered = " ".join([".venv/bin/python bench/index_bench.py", *sys.argv[1:]])
        args.out.write_text(report(runs, rendered))
        log(f"wrote {args.out}")
        return
    posts = sample_posts()
    run: dict[str, Any] = {
        "label": args.label,
        "command": " ".join(["taskset -c 1 .venv/bin/python bench/index_bench.py", *sys.argv[1:]]),
        "cores": len(os.sched_getaffinity(0)),
        "sizes": [],
    }
    for size in (int(s) for s in args.sizes.split(",")):
        done = list(run["sizes"])

        def write(result: SizeResult, done: list[dict[str, Any]] = done) -> None:
            run["sizes"] = [*done, asdict(result)]  # this size so far, after the ones done
            if args.json:
                args.json.write_text(json.dumps(run, indent=1))
            else:
                args.out.write_text(report([run], run["command"]))

        write(
            run_size(
                size,
                posts,
                queries=args.queries,
                hybrid_queries=args.hybrid_queries,
                upserts=args.upserts,
                pause=args.search_pause_ms / 1000,
                progress=write,
            )
        )
    log("done")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(runs: list[dict[str, Any]], rendered: str) -> str:
    lines = [
        "# Case index: build, memory, recall, latency, writes and rebuilds",
        "",
        "Produced by `bench/index_bench.py` (its docstring says what each step does). Synthetic clustered "
        "512-d vectors with sample-world post texts; latency is one `CaseIndex.search` (k=10, no filter) "
        "on one thread: dense mode (empty text), and hybrid (a post's text as the query text, "
        f"{SERVICE_EF} efSearch for HNSW, the service's). Recall@10 is against exact search on the same "
        "cases. HNSW: M=32, efConstruction=80. Memory is `CaseIndex.nbytes()`: vectors, graph, lexical "
        "segments and frequencies, slot table.",
        "",
    ]
    lines.append(f"Rows labelled by the run that measured them; tables rendered by `{rendered}`.")
    lines.append("")
    for run in runs:
        lines.append(f"- **{run['label']}**: `{run['command']}` ({run['cores']} core(s))")
    lines += [
        "",
        "## Search and memory",
        "",
        "| code | cases | search | efSearch | build s | bytes/case | of which lexical | recall@10 "
        "| dense p50 ms | dense p99 ms | hybrid p50 ms | hybrid p99 ms |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sorted({s["size"] for run in runs for s in run["sizes"]}):
        for run in runs:
            for result in (s for s in run["sizes"] if s["size"] == size):
                for r in result["searches"]:
                    ef = "-" if r["ef_search"] is None else str(r["ef_search"])
                    lines.append(
                        f"| {run['label']} | {size:,} | {r['kind']} | {ef} | {r['build_seconds']:.1f} | "
                        f"{r['bytes_per_case']:,.0f} | {r['lexical_bytes_per_case']:,.0f} | "
                        f"{r['recall_at_10']:.3f} "
                        f"| {r['dense_p50_ms']:.2f} | {r['dense_p99_ms']:.2f} | {_ms(r['hybrid_p50_ms'])} "
                        f"| {_ms(r['hybrid_p99_ms'])} |"
                    )
    lines += [
        "",
        "HNSW build s = the exact build plus the switch (step 4).",
        "",
        "## Single-case upserts into the full index",
        "",
        "| code | cases | index | upsert | count | p50 ms | p99 ms | max ms |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for size in sorted({s["size"] for run in runs for s in run["sizes"]}):
        for run in runs:
            for result in (s for s in run["sizes"] if s["size"] == size):
                for w in result["writes"]:
                    lines.append(
                        f"| {run['label']} | {size:,} | {w['index']} | {w['upsert']} | {w['count']} | "
                        f"{w['p50_ms']:.2f} | {w['p99_ms']:.2f} | {w['max_ms']:.1f} |"
                    )
    lines += [
        "",
        "## Searches while the index rebuilds",
        "",
        "A rebuild runs on one thread (the `compact()` call, or the upsert that crosses `hnsw_above`) "
        "while the main thread runs hybrid searches back to back until it is done. Both share one core.",
        "",
        "| code | cases | rebuild | rebuild s | call ms | searches meanwhile | their p50 ms "
        "| their p99 ms | longest search ms |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sorted({s["size"] for run in runs for s in run["sizes"]}):
        for run in runs:
            for result in (s for s in run["sizes"] if s["size"] == size):
                for b in result["rebuilds"]:
                    lines.append(
                        f"| {run['label']} | {size:,} | {b['what']} | {b['seconds']:.1f} | "
                        f"{b['call_ms']:,.1f} | "
                        f"{b['searches']:,} | {b['search_p50_ms']:.2f} | {b['search_p99_ms']:,.1f} | "
                        f"{b['longest_search_ms']:,.1f} |"
                    )
    lines += ["", *verdicts(runs[-1]), ""]
    return "\n".join(lines)


def verdicts(run: dict[str, Any]) -> list[str]:
    largest = max(run["sizes"], key=lambda s: s["size"])
    size = largest["size"]
    meeting = [r for r in largest["searches"] if r["kind"] == "hnsw" and r["recall_at_10"] >= TARGET_RECALL]
    lines = [f"Targets, {run['label']} at {size:,} cases:", ""]
    if meeting:
        best = min(meeting, key=lambda r: r["dense_p99_ms"])
        met = "met" if best["dense_p99_ms"] < TARGET_P99_MS else "missed"
        lines.append(
            f"- dense p99 < {TARGET_P99_MS} ms at recall@10 >= {TARGET_RECALL}: {met} (efSearch "
            f"{best['ef_search']}: recall {best['recall_at_10']:.3f}, p99 {best['dense_p99_ms']:.2f} ms)"
        )
    elif not any(r["kind"] == "hnsw" for r in largest["searches"]):
        lines.append("- HNSW: not measured at this size (the run had not got that far)")
    else:
        lines.append(f"- no efSearch tried reached recall@10 {TARGET_RECALL}")
    memory = max(r["bytes_per_case"] for r in largest["searches"])
    lines.append(
        f"- <= {TARGET_BYTES:,} bytes per case: "
        f"{'met' if memory <= TARGET_BYTES else 'missed'} ({memory:,.0f})"
    )
    return lines


if __name__ == "__main__":
    main()
