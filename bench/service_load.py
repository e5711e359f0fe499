"""Load benchmark: /v1/route on a real uvicorn process over loopback, beside encoder-only time.

Starts `casematch serve` on the given home (which must already hold a champion and a seeded
store over the 20,000-case world: run `CASEMATCH_SEED_WORLD=world make run` once), then, in one
run:
- encoder-only: the same post texts encoded one at a time in this process (the floor a route
  call cannot beat: it encodes the post too);
- /v1/route at 1, 8 and 32 concurrent clients (async httpx), each for a fixed number of
  requests, reporting p50 / p99 latency, throughput and the mean encoder micro-batch, once with
  micro-batching (CASEMATCH_ROUTE_BATCH=16) and once without (=1), in that order.

    .venv/bin/python bench/service_load.py [--home var] [--requests 200] [--route-batch 16,1]

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


def encoder_counts(url: str) -> tuple[float, float]:
    """(encoder calls, posts encoded) for route requests so far, from /metrics."""
    values = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(("casematch_route_encoder_calls ", "casematch_route_posts_encoded ")):
            name, value = line.split()
            values[name] = float(value)
    return values["casematch_route_encoder_calls"], values["casematch_route_posts_encoded"]


def run_server(
    home: Path, port: int, route_batch: int, warm_up: list[dict[str, str]], per_level: list[dict[str, str]]
) -> list[str]:
    """Table rows for one server setting: every concurrency level on the same posts."""
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CASEMATCH_HOME": str(home.resolve()), "CASEMATCH_ROUTE_BATCH": str(route_batch)}
    rows = []
    with (home / "bench-service.log").open("a") as server_log:
        process = subprocess.Popen(
            [str(CASEMATCH), "serve", "--port", str(port)],
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(url, process)
            key = (home / "api-key").read_text().strip().split(":")[1]
            asyncio.run(load(url, key, warm_up, 4))  # models, caches and connection pool warm
            for concurrency in LEVELS:
                calls_before, posts_before = encoder_counts(url)
                latencies, elapsed, failures = asyncio.run(load(url, key, per_level, concurrency))
                calls, posts = encoder_counts(url)
                p50, p99 = np.percentile(latencies, [50, 99]) * 1000
                mean_batch = (posts - posts_before) / max(calls - calls_before, 1)
                rows.append(
                    f"| {route_batch} | {concurrency} | {len(latencies)} | {p50:.1f} | {p99:.1f} | "
                    f"{len(latencies) / elapsed:.1f} | {mean_batch:.2f} | {failures} |"
                )
                log(rows[-1])
        finally:
            process.terminate()
            process.wait(timeout=60)
    return rows


LEVELS = (1, 8, 32)


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
    args = parser.parse_args()
    # route posts are never cached, so every setting and level can replay the same posts
    texts = posts(args.requests * 2)
    warm_up, per_level = texts[: args.requests], texts[args.requests :]
    encode = encoder_only(per_level)
    log(f"encoder-only p50 {statistics.median(encode) * 1000:.1f} ms")
    rows = [
        row
        for batch in (int(b) for b in args.route_batch.split(","))
        for row in run_server(args.home, args.port, batch, warm_up, per_level)
    ]
    encode_p50, encode_p99 = np.percentile(encode, [50, 99]) * 1000
    single = {int(r.split("|")[1]): float(r.split("|")[4]) for r in rows if int(r.split("|")[2]) == 1}
    ratios = ", ".join(f"{p50 / encode_p50:.2f}x with route_batch={b}" for b, p50 in single.items())
    report = [
        "# Service load",
        "",
        f"Command: `.venv/bin/python bench/service_load.py --home {args.home}` on {platform.machine()} with "
        f"{len(os.sched_getaffinity(0))} core(s): a real `casematch serve` (uvicorn, one worker) on "
        "loopback over the 20,000-case world, once per `CASEMATCH_ROUTE_BATCH` setting (1 = each post "
        "encoded alone, i.e. no micro-batching); the same posts from the committed sample (English and "
        "Spanish) at every level and setting, after a warm-up with others. Route posts are not cached. "
        "The access log goes to a file, as in production. Mean batch = posts per encoder call.",
        "",
        f"Encoder-only (USE, one post at a time, same posts, same run): p50 {encode_p50:.1f} ms, "
        f"p99 {encode_p99:.1f} ms. Route p50 at 1 client over encoder-only p50: {ratios} (target <= 1.3x).",
        "",
        "| route_batch | clients | requests | p50 ms | p99 ms | requests/s | mean batch | failed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(report))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
