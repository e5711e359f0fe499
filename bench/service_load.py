"""Load benchmark: /v1/route on a real uvicorn process over loopback, beside encoder-only time.

Starts `casematch serve` on the given home (which must already hold a champion and a seeded
store over the 20,000-case world: run `CASEMATCH_SEED_WORLD=world make run` once), then, in one
run:
- encoder-only: the same post texts encoded one at a time in this process (the floor a route
  call cannot beat: it encodes the post too);
- /v1/route at 1, 8 and 32 concurrent clients (async httpx), each for a fixed number of
  requests, reporting p50 / p99 latency, throughput and the mean encoder micro-batch, for every
  `--workers` count (processes behind the port) and every `--route-batch` setting
  (CASEMATCH_ROUTE_BATCH=16: micro-batching; =1: each post alone);
- optionally the same at one worker for a `--baseline` source tree (e.g. the code before a
  change, from `git worktree add`), so before and after share the run and the machine's noise.

    .venv/bin/python bench/service_load.py [--home var] [--requests 200] [--route-batch 16,1] \
        [--workers 1,2] [--baseline /tmp/before]

Writes bench/service.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ml.embeddings import load_encoder
from ml.matching import post_text
from ml.paths import SAMPLE_WORLD_DIR
from ml.synthetic.world import read_table

BENCH_DIR = Path(__file__).resolve().parent
CASEMATCH = Path(sys.executable).with_name("casematch")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def posts(n: int) -> list[dict[str, str]]:
    """Real-looking posts (the committed sample's, both languages), not in the served world."""
    cases = read_table(SAMPLE_WORLD_DIR, "cases").to_pylist()[:n]
    return [{"title": c["title"], "text": c["body"], "language": c["language"]} for c in cases]


def encoder_only(texts: list[dict[str, str]]) -> list[float]:
    encoder = load_encoder("use")  # no cache: a route call cannot count on one for a new post
    encoder.encode_queries(["warm up"])
    seconds = []
    for post in texts:
        started = time.perf_counter()
        encoder.encode_queries([post_text(post["title"], post["text"])])
        seconds.append(time.perf_counter() - started)
    return seconds


async def load(
    url: str, key: str, texts: list[dict[str, str]], concurrency: int
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    for post in texts:
        queue.put_nowait(post)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while not queue.empty():
            post = queue.get_nowait()
            started = time.perf_counter()
            response = await client.post("/v1/route", json={"case": post})
            latencies.append(time.perf_counter() - started)
            failures += response.status_code != 200

    limits = httpx.Limits(max_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, failures


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("casematch serve exited; see its log in the home")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise TimeoutError("the service did not become ready")


def worker_cpu_seconds(server_pid: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of the server process and each of its children (the
    workers, with `--workers`), from /proc: how the load was shared between them."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [server_pid]
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # gone meanwhile
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return seconds


def encoder_counts(url: str) -> tuple[float, float]:
    """(encoder calls, posts encoded) for route requests so far, from /metrics."""
    values = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(("casematch_route_encoder_calls ", "casematch_route_posts_encoded ")):
            name, value = line.split()
            values[name] = float(value)
    return values["casematch_route_encoder_calls"], values["casematch_route_posts_encoded"]


def run_server(
    home: Path,
    port: int,
    setting: Setting,
    warm_up: list[dict[str, str]],
    per_level: list[dict[str, str]],
) -> list[str]:
    """Table rows for one server setting: every concurrency level on the same posts."""
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CASEMATCH_HOME": str(home.resolve()),
        "CASEMATCH_ROUTE_BATCH": str(setting.route_batch),
    }
    command = [str(CASEMATCH), "serve", "--port", str(port)]
    if setting.source is not None:  # the baseline tree's code, with this environment's packages
        env["PYTHONPATH"] = str(setting.source)
        command = [sys.executable, "-c", "from service.cli import app; app()", "serve", "--port", str(port)]
    else:
        command += ["--workers", str(setting.workers)]
    rows = []
    with (home / "bench-service.log").open("a") as server_log:
        process = subprocess.Popen(command, env=env, stdout=server_log, stderr=subprocess.STDOUT)
        try:
            wait_ready(url, process)
            key = (home / "api-key").read_text().strip().split(":")[1]
            asyncio.run(load(url, key, warm_up, 4))  # models, caches and connection pool warm
            for concurrency in LEVELS:
                calls_before, posts_before = encoder_counts(url)
                cpu_before = worker_cpu_seconds(process.pid)
                latencies, elapsed, failures = asyncio.run(load(url, key, per_level, concurrency))
                cpu = worker_cpu_seconds(process.pid)
                calls, posts = encoder_counts(url)
                shares = sorted((cpu[pid] - cpu_before.get(pid, 0.0) for pid in cpu), reverse=True)
                busy = [f"{seconds:.1f}" for seconds in shares if seconds >= 0.5] or ["0"]
                p50, p99 = np.percentile(latencies, [50, 99]) * 1000
                # /metrics answers from whichever worker takes the request: one worker's counts only
                mean_batch = (
                    f"{(posts - posts_before) / max(calls - calls_before, 1):.2f}"
                    if setting.workers == 1
                    else "-"
                )
                rows.append(
                    f"| {setting.label} | {setting.workers} | {setting.route_batch} | {concurrency} | "
                    f"{len(latencies)} | {p50:.1f} | {p99:.1f} | {len(latencies) / elapsed:.1f} | "
                    f"{mean_batch} | {' + '.join(busy)} | {failures} |"
                )
                log(rows[-1])
        finally:
            process.terminate()
            process.wait(timeout=60)
    return rows


LEVELS = (1, 8, 32)


@dataclass(frozen=True)
class Setting:
    label: str  # "this tree" or "baseline"
    workers: int
    route_batch: int
    source: Path | None = None  # a baseline source tree; None: this one


def _column(row: str, index: int) -> str:
    return row.split("|")[index + 1].strip()


def _summary(rows: list[str], encode_p50: float) -> list[str]:
    """Route p50 over encoder-only at one client, and 2 workers over 1 in requests/s."""
    lines = []
    for row in rows:
        if _column(row, 3) == "1":
            lines.append(
                f"- {_column(row, 0)}, {_column(row, 1)} worker(s), route_batch {_column(row, 2)}: route p50 "
                f"{_column(row, 5)} ms = {float(_column(row, 5)) / encode_p50:.2f}x encoder-only "
                "(target <= 2x)"
            )
    throughput = {
        (_column(r, 0), _column(r, 1), _column(r, 2), _column(r, 3)): float(_column(r, 7)) for r in rows
    }
    for (label, workers, batch, clients), rate in throughput.items():
        one = throughput.get((label, "1", batch, clients))
        if workers != "1" and one and clients != "1":
            lines.append(
                f"- {label}, route_batch {batch}, {clients} clients: {workers} workers {rate:.1f} req/s over "
                f"1 worker {one:.1f} req/s = {rate / one:.2f}x (target >= 1.8x for 2 workers)"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home", type=Path, default=Path("var"), help="CASEMATCH_HOME with a champion and a seeded store"
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument(
        "--route-batch",
        default="16,1",
        help="CASEMATCH_ROUTE_BATCH settings to compare, one server run each (1: no micro-batching)",
    )
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "service.md")
    parser.add_argument("--workers", default="1,2", help="`casematch serve --workers` counts to compare")
    parser.add_argument(
        "--baseline", type=Path, help="a source tree to measure too, at one worker (the code before a change)"
    )
    args = parser.parse_args()
    # route posts are never cached, so every setting and level can replay the same posts
    texts = posts(args.requests * 2)
    warm_up, per_level = texts[: args.requests], texts[args.requests :]
    encode = encoder_only(per_level)
    log(f"encoder-only p50 {statistics.median(encode) * 1000:.1f} ms")
    batches = [int(b) for b in args.route_batch.split(",")]
    settings = [Setting("baseline", 1, b, args.baseline) for b in batches] if args.baseline else []
    settings += [Setting("this tree", int(w), b) for w in args.workers.split(",") for b in batches]
    rows = [
        row for setting in settings for row in run_server(args.home, args.port, setting, warm_up, per_level)
    ]
    encode_p50, encode_p99 = np.percentile(encode, [50, 99]) * 1000
    baseline = f" --baseline {args.baseline}" if args.baseline else ""
    report = [
        "# Service load",
        "",
        f"Command: `.venv/bin/python bench/service_load.py --home {args.home} --workers {args.workers} "
        f"--route-batch {args.route_batch}{baseline}` on {platform.machine()} with "
        f"{len(os.sched_getaffinity(0))} core(s): a real `casematch serve` on loopback, once per setting "
        "(workers = processes behind the port; route_batch 1 = each post encoded alone, i.e. no "
        "micro-batching); the same posts from the committed sample (English and Spanish) at every level "
        "and setting, after a warm-up with others. Route posts are not cached. The access log goes to a "
        "file, as in production. Mean batch = posts per encoder call, from /metrics (one worker only: "
        "with more, /metrics answers for whichever worker takes the request). CPU s by process = the CPU "
        "seconds each server process (each worker) spent at that level, largest first: how the load was "
        "shared. "
        "The load generator runs on the same two cores as the server.",
        "",
        f"Encoder-only (USE, one post at a time, same posts, same run): p50 {encode_p50:.1f} ms, "
        f"p99 {encode_p99:.1f} ms.",
        "",
        *_summary(rows, encode_p50),
        "",
        "| code | workers | route_batch | clients | requests | p50 ms | p99 ms | requests/s | mean batch "
        "| CPU s by process | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(report))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
