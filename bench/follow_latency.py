"""How soon a write taken by one `casematch serve` is seen by another over the same store.

Starts two real servers (one worker each, as two machines would be) on loopback over one store
and one registry, then N times: posts and resolves a new case on the first and polls the second's
/v1/route every 10 ms until the case is among its similar cases (ingest → visible elsewhere); then
erases it on the second and polls the first until it is gone (erasure → gone elsewhere). Reports
p50 / p99 / max of both against the 1 s target, with the follower's poll interval in force.

The home must hold a champion and a seeded store (e.g. `CASEMATCH_HOME=/tmp/h casematch bootstrap`
then one `casematch serve` start); the second server gets its own home over the same store.

    .venv/bin/python bench/follow_latency.py --home /tmp/h [--writes 30] [--out bench/follow.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.server_process, run from anywhere
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.server_process import serving

BENCH_DIR = Path(__file__).resolve().parent
POST = {
    "title": "Moldes bronquiales ramificados tras cirugía de Fontan",
    "text": "Niña operada de Fontan que expulsa moldes gomosos al toser; satura 84%. Broncoscopia pendiente.",
    "language": "es",
}


def _until_listed(api: httpx.Client, case_id: str, text: str, *, listed: bool, limit: float = 30.0) -> float:
    """Seconds until `case_id` is (or, `listed=False`, is no longer) among `api`'s similar cases."""
    started = time.perf_counter()
    while (case_id in _similar(api, text)) != listed:
        if time.perf_counter() - started > limit:
            raise TimeoutError(f"{case_id} not {'seen' if listed else 'gone'} within {limit} s")
        time.sleep(0.01)
    return time.perf_counter() - started


def _similar(api: httpx.Client, text: str) -> list[str]:
    body = api.post(
        "/v1/route", json={"case": {**POST, "text": text}, "limit_similar": 10, "limit_doctors": 0}
    )
    return [s["case_id"] for s in body.raise_for_status().json()["similar_cases"]]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, required=True, help="a home with a champion and a seeded store")
    parser.add_argument("--writes", type=int, default=30, help="cases ingested and erased")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "follow.md")
    args = parser.parse_args()
    home = args.home.resolve()
    key = (home / "api-key").read_text().strip()
    shared = {
        "CASEMATCH_DATABASE_URL": os.environ.get(
            "CASEMATCH_DATABASE_URL", f"sqlite:///{home / 'casematch.db'}"
        ),
        "CASEMATCH_MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "CASEMATCH_API_KEYS": key,
        "CASEMATCH_SEED_WORLD": "",
    }
    second_home = home.parent / f"{home.name}-follower"
    seen, gone = [], []
    with ExitStack() as stack:
        first = stack.enter_context(serving({**shared, "CASEMATCH_HOME": str(home)}))
        second = stack.enter_context(serving({**shared, "CASEMATCH_HOME": str(second_home)}))
        auth = {"Authorization": f"Bearer {key.split(':')[1]}"}
        one = httpx.Client(base_url=first.base_url, headers=auth, timeout=30)
        other = httpx.Client(base_url=second.base_url, headers=auth, timeout=30)
        resolution = {"diagnosis": "bronquitis plástica", "specialties": ["pediatric_pulmonology"]}
        for n in range(args.writes):
            case_id, text = f"follow-{time.time_ns()}", f"{POST['text']} Caso {n}."
            one.post("/v1/cases", json={"id": case_id, **POST, "text": text}).raise_for_status()
            one.post(f"/v1/cases/{case_id}/resolution", json=resolution).raise_for_status()
            seen.append(_until_listed(other, case_id, text, listed=True))
            other.delete(f"/v1/cases/{case_id}").raise_for_status()
            gone.append(_until_listed(one, case_id, text, listed=False))
            print(f"{n}: seen {seen[-1] * 1000:.0f} ms, gone {gone[-1] * 1000:.0f} ms", file=sys.stderr)

    def row(name: str, values: list[float]) -> str:
        p50, p99 = np.percentile(values, [50, 99]) * 1000
        met = "met" if max(values) <= 1.0 else f"missed by {max(values) - 1.0:.2f} s at worst"
        return f"| {name} | {len(values)} | {p50:.0f} | {p99:.0f} | {max(values) * 1000:.0f} | {met} |"

    report = [
        "# A write on one server, seen by another",
        "",
        f"Command: `.venv/bin/python bench/follow_latency.py --home {args.home} --writes {args.writes}` on "
        f"{platform.machine()} with {len(os.sched_getaffinity(0))} core(s): two `casematch serve` processes "
        "(one worker each) on loopback over one store; times from the write's acknowledgement until the "
        "other server's /v1/route shows it (polled every 10 ms; each poll is a full route call, so the "
        "times include up to one route call). Follower poll interval: "
        f"{os.environ.get('CASEMATCH_FOLLOW_SECONDS', '0.2')} s.",
        "",
        "| change | writes | p50 ms | p99 ms | max ms | 1 s target |",
        "|---|---:|---:|---:|---:|---|",
        row("case ingested and resolved on A, routed to by B", seen),
        row("case erased on B, gone from A's results", gone),
        "",
    ]
    args.out.write_text("\n".join(report))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
