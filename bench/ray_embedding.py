"""Batch embedding on Ray against one process: wall seconds to encode N real posts with one encoder.

    .venv/bin/python bench/ray_embedding.py [--posts 4000] [--repeats 3] [--spec use]
        [--threads 2] [--workers 2] [--batch-size 64] [--out bench/ray_embedding.md]

Measures, in one process and one session, three ways of encoding the same posts as documents:
  (a) one process, one thread:   load_encoder(spec, threads=1).encode_documents(posts)
  (b) one process, N threads:    load_encoder(spec, threads=--threads), the CLI's batch jobs today
  (c) Ray with --workers actors: ml.embeddings.distributed.RayEncoder, each actor one thread
Start-up is timed apart from encoding: for (a) and (b) loading the encoder and a warm-up call (its
weights load lazily); for (c) `ray.init` (a fresh local Ray on every core this process may use)
plus the actors loading their encoders; Ray's shutdown is timed too. Every repetition runs all
three ways, in a rotated order, so that load from other users of the machine falls on each way
alike; the report gives the median over repetitions and every repetition's numbers with how busy
the whole machine was meanwhile (/proc/stat, all cores, every process). Ray's vectors are checked
against (a)'s.

The posts: MTSamples transcriptions (English) and CodiEsp case reports (Spanish originals), all
splits, alternating, from the vendored corpora (ml.evaluation.corpora). Writes --out (markdown).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain, zip_longest
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import numpy.typing as npt

from ml.embeddings import load_encoder
from ml.embeddings.distributed import RayEncoder, ray_session
from ml.evaluation.corpora import SPLITS, load_codiesp, load_mtsamples

BENCH_DIR = Path(__file__).resolve().parent
Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Run:
    way: str
    repeat: int
    startup_s: float
    encode_s: float
    encode_cpu_s: float  # CPU seconds of this process and its descendants (Ray's too) while encoding
    shutdown_s: float
    machine_busy: float  # share of all cores' time busy (any process, any user) while encoding


@dataclass(frozen=True, slots=True)
class Encoding:
    vectors: Vectors
    seconds: float
    cpu_seconds: float
    machine_busy: float


def posts(n: int) -> list[str]:
    english = [note.text for split in SPLITS for note in load_mtsamples(split)]
    spanish = [doc.spanish for split in SPLITS for doc in load_codiesp(split)]
    mixed = [t for t in chain.from_iterable(zip_longest(english, spanish)) if t is not None]
    if n > len(mixed):
        sys.exit(f"--posts {n} is more than the {len(mixed)} posts of the corpora")
    return mixed[:n]


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of `root` and every live descendant (Ray's raylet, GCS, actors)."""
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                line = stat.read()
        except OSError:  # gone meanwhile
            continue
        fields = line[line.rindex(")") + 2 :].split()  # the command name may hold spaces
        children.setdefault(int(fields[1]), []).append(int(entry))
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def timed_encode(encode: Callable[[list[str]], Vectors], texts: list[str]) -> Encoding:
    machine, cpu, started = machine_ticks(), tree_cpu_seconds(os.getpid()), time.perf_counter()
    vectors = encode(texts)
    seconds = time.perf_counter() - started
    cpu = tree_cpu_seconds(os.getpid()) - cpu
    after = machine_ticks()
    return Encoding(vectors, seconds, cpu, (after[0] - machine[0]) / max(1, after[1] - machine[1]))


def in_process(spec: str, threads: int) -> Callable[[list[str]], tuple[float, Encoding, float]]:
    def run(texts: list[str]) -> tuple[float, Encoding, float]:
        started = time.perf_counter()
        encoder = load_encoder(spec, threads=threads)
        encoder.encode_documents(["warm-up"])
        startup = time.perf_counter() - started
        return startup, timed_encode(encoder.encode_documents, texts), 0.0

    return run


def on_ray(spec: str, workers: int, batch_size: int) -> Callable[[list[str]], tuple[float, Encoding, float]]:
    def run(texts: list[str]) -> tuple[float, Encoding, float]:
        started = time.perf_counter()
        with ray_session(), RayEncoder(spec, workers=workers, batch_size=batch_size) as encoder:
            startup = time.perf_counter() - started
            encoding = timed_encode(encoder.encode_documents, texts)
            stopping = time.perf_counter()
        return startup, encoding, time.perf_counter() - stopping

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=4000, help="posts to encode (default 4000)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each way (median reported)")
    parser.add_argument("--spec", default="use", help="encoder spec (CASEMATCH_ENCODER syntax)")
    parser.add_argument("--threads", type=int, default=2, help="threads of way (b)")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors of way (c)")
    parser.add_argument("--batch-size", type=int, default=64, help="posts per Ray task")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "ray_embedding.md", help="markdown report")
    args = parser.parse_args()

    texts = posts(args.posts)
    words = statistics.mean(len(t.split()) for t in texts)
    ways = {
        "(a) 1 process, 1 thread": in_process(args.spec, 1),
        f"(b) 1 process, {args.threads} threads": in_process(args.spec, args.threads),
        f"(c) Ray, {args.workers} actors x 1 thread": on_ray(args.spec, args.workers, args.batch_size),
    }
    names = list(ways)
    runs: list[Run] = []
    reference: Vectors | None = None
    max_diff = 0.0
    load_before = os.getloadavg()
    for repeat in range(args.repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            startup, encoding, shutdown = ways[name](texts)
            runs.append(
                Run(
                    name,
                    repeat + 1,
                    startup,
                    encoding.seconds,
                    encoding.cpu_seconds,
                    shutdown,
                    encoding.machine_busy,
                )
            )
            if name.startswith("(a)") and reference is None:
                reference = encoding.vectors
            elif name.startswith("(c)") and reference is not None:
                max_diff = max(max_diff, float(np.abs(encoding.vectors - reference).max()))
            print(
                f"repeat {repeat + 1} {name}: start-up {startup:.1f} s, encode {encoding.seconds:.1f} s "
                f"({len(texts) / encoding.seconds:.1f} posts/s, {encoding.cpu_seconds:.0f} CPU s), "
                f"machine busy {encoding.machine_busy:.0%}",
                file=sys.stderr,
                flush=True,
            )
    report = render(args, runs, names, len(texts), words, max_diff, load_before, os.getloadavg())
    args.out.write_text(report)
    print(report)


def render(
    args: argparse.Namespace,
    runs: list[Run],
    names: list[str],
    n: int,
    words: float,
    max_diff: float,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    def median(name: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in runs if r.way == name))

    enc = {name: median(name, "encode_s") for name in names}
    cpu = {name: median(name, "encode_cpu_s") for name in names}
    start = {name: median(name, "startup_s") for name in names}
    total = {
        name: statistics.median(r.startup_s + r.encode_s for r in runs if r.way == name) for name in names
    }
    a, b, _ = names
    rows = [
        f"| {name} | {start[name]:.1f} | {enc[name]:.1f} | {n / enc[name]:.1f} "
        f"| {enc[a] / enc[name]:.2f}x | {enc[b] / enc[name]:.2f}x "
        f"| {cpu[name]:.0f} | {cpu[name] / enc[name]:.2f} "
        f"| {total[name]:.1f} | {total[a] / total[name]:.2f}x | {total[b] / total[name]:.2f}x |"
        for name in names
    ]
    detail = [
        f"| {r.repeat} | {r.way} | {r.startup_s:.1f} | {r.encode_s:.1f} | {n / r.encode_s:.1f} "
        f"| {r.encode_cpu_s:.0f} | {r.encode_cpu_s / r.encode_s:.2f} "
        f"| {r.shutdown_s:.1f} | {r.machine_busy:.0%} |"
        for r in sorted(runs, key=lambda r: (r.repeat, names.index(r.way)))
    ]
    command = (
        f"HF_HUB_OFFLINE=1 .venv/bin/python bench/ray_embedding.py --posts {n} --repeats {args.repeats} "
        f"--spec {args.spec} --threads {args.threads} --workers {args.workers} --batch-size {args.batch_size}"
    )
    return "\n".join(
        [
            "# Batch embedding: one process against Ray",
            "",
            f"Command: `{command}`. Machine: {os.cpu_count()} cores, this process allowed "
            f"{len(os.sched_getaffinity(0))}; load average {load_before[0]:.2f} before, "
            f"{load_after[0]:.2f} after (the cores are shared with other users). Posts: {n:,} real "
            f"posts (MTSamples English and CodiEsp Spanish, alternating), mean {words:.0f} words, "
            f"encoded as documents with `{args.spec}`. Wall seconds, median of {args.repeats}; "
            "start-up apart (see the script's docstring). Speed-ups are ratios of wall seconds. "
            "CPU s: CPU seconds our processes (Ray's included) spent encoding; cores got = CPU s / "
            "encode s, the cores' worth the scheduler gave us (at most 1.00 for (a), 2.00 for (b) "
            "and (c)).",
            "",
            "| way | start-up s | encode s | posts/s | encode vs (a) | encode vs (b) | CPU s | cores got "
            "| start-up + encode s | total vs (a) | total vs (b) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Ray's vectors against (a)'s: largest absolute difference {max_diff:.2g}.",
            "",
            verdict(enc, total, names),
            "",
            "Every repetition (machine busy = all cores, every process of every user, while encoding):",
            "",
            "| repeat | way | start-up s | encode s | posts/s | CPU s | cores got | Ray shutdown s "
            "| machine busy |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
            *detail,
            "",
        ]
    )


def verdict(enc: dict[str, float], total: dict[str, float], names: list[str]) -> str:
    a, b, c = names
    lines = []
    for base in (a, b):
        speedup, overall = enc[base] / enc[c], total[base] / total[c]
        if speedup < 1.05:
            lines.append(f"Ray is NOT faster than {base[:3]} at encoding ({speedup:.2f}x).")
        else:
            lines.append(
                f"Ray encodes {speedup:.2f}x as fast as {base[:3]}"
                + (
                    f"; with its start-up counted, {overall:.2f}x."
                    if overall >= 1.05
                    else f", but with its start-up counted it is NOT faster ({overall:.2f}x)."
                )
            )
    return " ".join(lines)


if __name__ == "__main__":
    main()
