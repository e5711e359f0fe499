"""Where one POST /v1/route call spends its time: pyinstrument over the real app, in process.

Starts the service's runtime on a served home (a champion, a seeded store and its index, as
`make run` leaves them), then sends `--requests` route calls of real dev notes (MTSamples English
and CodiEsp Spanish in turn) through the ASGI app (httpx's ASGI transport: every middleware, dependency,
de-identification, routing, JSON and the audit record; no socket; FastAPI's thread pool replaced by
inline calls so that one thread does everything, as the profiler samples one thread), after 20 to warm
up, under one pyinstrument profiler. Beside it, in the same run, the encoder alone on the same
posts (the floor: a route encodes its post too). The calls are timed once, then
profiled. Writes bench/route_profile.md: wall ms per call
for both, the share of route time in each stage the service's code names, and pyinstrument's
call tree down to the frames that hold at least `--min-share` of the time.

    .venv/bin/python bench/route_profile.py --home var [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ml.evaluation.corpora import load_codiesp, load_mtsamples
from ml.matching import post_text
from ml.paths import SAMPLE_WORLD_DIR
from ml.synthetic.world import read_table

BENCH_DIR = Path(__file__).resolve().parent
SECRET = "profile-secret-0123456789abcdef"
WARM_UP = 20
DESCRIBED = {
    "real": "real dev notes (MTSamples, CodiEsp; long)",
    "sample": "the committed sample world's posts (short)",
}
# Stages by the function that does them: (label, pyinstrument frame function names).
STAGES = (
    ("encoding the post (USE)", ("_encode", "encode")),
    ("de-identification", ("deidentified",)),
    ("specialty and urgency models", ("predict_cases",)),
    ("index search (dense + lexical)", ("search_with_neighbours",)),
    ("doctors (candidates, features, ranker)", ("_doctors",)),
    ("similar cases: stored texts, shared terms", ("similar_out",)),
    ("response JSON", ("json_response",)),
)


def real_posts(n: int) -> list[dict[str, dict[str, str]]]:
    """Dev notes of the real corpora, English (MTSamples) and Spanish (CodiEsp) in turn: real
    text, and none of it in the served store."""
    english = [note.text for note in load_mtsamples("dev")]
    spanish = [doc.spanish for doc in load_codiesp("dev")]
    posts = []
    for i in range(n):
        language, texts = ("en", english) if i % 2 == 0 else ("es", spanish)
        text = texts[(i // 2) % len(texts)]
        first = text.split(".")[0][:120].strip()
        title = first if len(first) >= 3 else f"Case {i + 1}"
        case = {"title": title, "text": text[:20_000], "language": language}
        posts.append({"case": case})
    return posts


def sample_posts(n: int) -> list[dict[str, dict[str, str]]]:
    """The committed sample world's posts (short, as doctors write them; in a sample-seeded store)."""
    cases = read_table(SAMPLE_WORLD_DIR, "cases").to_pylist()[:n]
    return [{"case": {"title": c["title"], "text": c["body"], "language": c["language"]}} for c in cases]


def inline_threadpool() -> None:
    """Run FastAPI's sync handlers and dependencies on the event loop's thread, not a pool's: the
    profiler samples one thread (for one client at a time nothing else changes)."""
    import fastapi.dependencies.utils
    import fastapi.routing

    async def inline(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    fastapi.routing.run_in_threadpool = inline  # type: ignore[assignment]
    fastapi.dependencies.utils.run_in_threadpool = inline  # type: ignore[assignment]


async def profiled_calls(
    app: Any, posts: list[dict[str, Any]], headers: dict[str, str]
) -> tuple[list[float], Any]:
    """Warm up, then time and profile one route call after another through the ASGI app."""
    import httpx
    from pyinstrument import Profiler

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for post in posts[:WARM_UP]:
            _checked(await client.post("/v1/route", json=post, headers=headers))
        route_ms = []
        for post in posts[WARM_UP:]:  # timed without the profiler first
            started = time.perf_counter()
            _checked(await client.post("/v1/route", json=post, headers=headers))
            route_ms.append((time.perf_counter() - started) * 1000)
        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
        for post in posts[WARM_UP:]:
            _checked(await client.post("/v1/route", json=post, headers=headers))
        return route_ms, profiler.stop()


def _checked(response: Any) -> None:
    if response.status_code != 200:
        raise SystemExit(f"POST /v1/route answered {response.status_code}: {response.text[:500]}")


def stage_seconds(session: Any) -> dict[str, float]:
    """Seconds under the first frame of each stage's functions (nested repeats counted once)."""
    totals = dict.fromkeys((label for label, _ in STAGES), 0.0)

    def visit(frame: Any, inside: frozenset[str]) -> None:
        for label, names in STAGES:
            if frame.function in names and label not in inside:
                totals[label] += frame.time
                inside = inside | {label}
        for child in frame.children:
            visit(child, inside)

    root = session.root_frame()
    if root is not None:
        visit(root, frozenset())
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path("var"), help="a served home (default %(default)s)")
    parser.add_argument(
        "--requests", type=int, default=200, help="route calls profiled (default %(default)s)"
    )
    parser.add_argument(
        "--min-share", type=float, default=0.02, help="call-tree frames shown (share of time)"
    )
    parser.add_argument(
        "--posts",
        choices=("real", "sample"),
        default="real",
        help="real dev notes (long; not in the store) or the sample world's posts (short)",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "route_profile.md")
    args = parser.parse_args()
    os.environ["CASEMATCH_HOME"] = str(args.home.resolve())
    os.environ["CASEMATCH_API_KEYS"] = f"profile:{SECRET}:route"
    os.environ["CASEMATCH_WORKERS"] = "1"

    from pyinstrument.renderers import ConsoleRenderer
    from threadpoolctl import threadpool_limits

    from ml.embeddings import load_encoder
    from service.app import create_app
    from service.runtime import Runtime
    from service.settings import Settings

    settings = Settings()
    threadpool_limits(limits=settings.encoder_threads)  # as `casematch serve` does
    runtime = Runtime.start(settings, watch=False)
    posts = (real_posts if args.posts == "real" else sample_posts)(WARM_UP + args.requests)
    headers = {"Authorization": f"Bearer {SECRET}"}
    encoder = load_encoder(settings.encoder, threads=settings.encoder_threads)  # no cache, as a route
    texts = [post_text(p["case"]["title"], p["case"]["text"]) for p in posts]
    encoder.encode_queries(texts[:WARM_UP])
    encoder_ms = []
    for text in texts[WARM_UP:]:
        started = time.perf_counter()
        encoder.encode_queries([text])
        encoder_ms.append((time.perf_counter() - started) * 1000)
    inline_threadpool()  # one thread: pyinstrument sees the handlers, not a lock wait
    try:
        route_ms, session = asyncio.run(profiled_calls(create_app(runtime), posts, headers))
    finally:
        runtime.close()
    profiled = session.duration
    stages = stage_seconds(session)
    tree = ConsoleRenderer(
        unicode=False,
        color=False,
        show_all=False,
        time="percent_of_total",
        processor_options={"filter_threshold": args.min_share},
    ).render(session)
    route_p50, encoder_p50 = statistics.median(route_ms), statistics.median(encoder_ms)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# One POST /v1/route call, profiled",
        "",
        f"Command: `.venv/bin/python bench/route_profile.py {' '.join(sys.argv[1:])}` "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load}). "
        f"{args.requests} calls of {DESCRIBED[args.posts]} through the ASGI app in process, "
        f"after {WARM_UP} to warm up, against {len(runtime.engine.matcher.index):,} indexed cases "
        f"and {len(runtime.engine.activity):,} doctors; "
        f"`CASEMATCH_ENCODER_THREADS={settings.encoder_threads}`.",
        "",
        "| | p50 ms | mean ms |",
        "|---|---:|---:|",
        f"| POST /v1/route | {route_p50:.1f} | {statistics.fmean(route_ms):.1f} |",
        f"| POST /v1/route, profiled | - | {profiled * 1000 / args.requests:.1f} |",
        f"| encoder alone, same posts | {encoder_p50:.1f} | {statistics.fmean(encoder_ms):.1f} |",
        f"| ratio (p50) | {route_p50 / encoder_p50:.2f}x | |",
        "",
        "The same calls were timed, then profiled (the profiler samples every 0.5 ms and slows them). "
        "Through the ASGI transport a call returns once the app is done, so it "
        "includes the audit record written after the response (a background task on another thread, "
        "not in the profile), which a client over HTTP does not wait for.",
        "",
        "## Share of the profiled route time, by stage",
        "",
        "| stage | ms per call | share |",
        "|---|---:|---:|",
        *(
            f"| {label} | {seconds * 1000 / args.requests:.1f} | {seconds / profiled:.1%} |"
            for label, seconds in stages.items()
        ),
        f"| everything else (FastAPI, validation, middleware, auth, the ASGI client) | "
        f"{(profiled - sum(stages.values())) * 1000 / args.requests:.1f} | "
        f"{(profiled - sum(stages.values())) / profiled:.1%} |",
        "",
        f"## pyinstrument's call tree (frames of at least {args.min_share:.0%})",
        "",
        "```",
        tree.rstrip(),
        "```",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
