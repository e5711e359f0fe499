"""Load benchmark: /v1/route on a real uvicorn process over loopback, beside encoder-only time.

Starts `casematch serve` on the given home (which must already hold a champion and a seeded
store: run `make run` once), then, in one run:
- encoder-only: the same post texts encoded one at a time in this process (the floor a route
  call cannot beat: it encodes the post too);
- /v1/route at 1, 8 and 32 concurrent clients (async httpx), each for a fixed number of
  requests, reporting p50 / p99 latency and throughput.

    .venv/bin/python bench/service_load.py [--home var] [--requests 200]

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
            raise RuntimeError("casematch serve exited; see its output above")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise TimeoutError("the service did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home", type=Path, default=Path("var"), help="CASEMATCH_HOME with a champion and a seeded store"
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "service.md")
    args = parser.parse_args()
    key_file = args.home / "api-key"
    levels = (1, 8, 32)
    # distinct posts per level: the service caches vectors by text, and a repeat would skip the encoder
    texts = posts(args.requests * (len(levels) + 1))
    warm_up, per_level = texts[: args.requests], texts[args.requests :]
    encode = encoder_only(per_level[: args.requests])
    log(f"encoder-only p50 {statistics.median(encode) * 1000:.1f} ms")

    url = f"http://127.0.0.1:{args.port}"
    env = {**os.environ, "CASEMATCH_HOME": str(args.home.resolve())}
    server_log = (args.home / "bench-service.log").open("w")
    process = subprocess.Popen(
        [str(CASEMATCH), "serve", "--port", str(args.port)],
        env=env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(url, process)
        key = key_file.read_text().strip().split(":")[1]
        rows = []
        asyncio.run(load(url, key, warm_up, 4))  # models, caches and connection pool warm
        for level, concurrency in enumerate(levels):
            batch = per_level[level * args.requests : (level + 1) * args.requests]
            latencies, elapsed, failures = asyncio.run(load(url, key, batch, concurrency))
            p50, p99 = np.percentile(latencies, [50, 99]) * 1000
            throughput = len(latencies) / elapsed
            cells = f"{len(latencies)} | {p50:.1f} | {p99:.1f} | {throughput:.1f} | {failures}"
            rows.append(f"| {concurrency} | {cells} |")
            log(rows[-1])
    finally:
        process.terminate()
        process.wait(timeout=30)
        server_log.close()

    encode_p50, encode_p99 = np.percentile(encode, [50, 99]) * 1000
    report = [
        "# Service load",
        "",
        f"Command: `.venv/bin/python bench/service_load.py --home {args.home}` on {platform.machine()} with "
        f"{len(os.sched_getaffinity(0))} core(s): a real `casematch serve` (uvicorn, one worker) on "
        "loopback over the 20,000-case world; posts from the committed sample (English and Spanish), "
        "different posts at each level (none cached) after a warm-up with others. The access log goes "
        "to a file, as in production.",
        "",
        f"Encoder-only (USE, one post at a time, same texts, same run): p50 {encode_p50:.1f} ms, "
        f"p99 {encode_p99:.1f} ms.",
        "",
        "| concurrent clients | requests | p50 ms | p99 ms | requests/s | failed |",
        "|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    args.out.write_text("\n".join(report))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
