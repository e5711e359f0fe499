"""Benchmark: how long `casematch synth` takes for the committed sample and the full world.

Runs each size several times as a whole process (what a user waits for, imports included),
side by side in one run, and writes `bench/synth.md` with the medians and the world statistics.

    .venv/bin/python bench/synth_generation.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CASEMATCH = Path(sys.executable).with_name("casematch")
SIZES = {"sample": (2_000, 500), "full": (20_000, 5_000)}
TARGET_SECONDS = 60.0


def run_once(cases: int, doctors: int, out: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one generation."""
    started = time.perf_counter()
    subprocess.run(
        [
            str(CASEMATCH),
            "synth",
            "--cases",
            str(cases),
            "--doctors",
            str(doctors),
            "--out",
            str(out),
            "--force",
        ],
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    return wall, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size (after one warm-up)")
    args = parser.parse_args()
    rows, stats = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        run_once(*SIZES["sample"], Path(tmp) / "warmup")
        for label, (cases, doctors) in SIZES.items():
            out = Path(tmp) / label
            walls, peaks = zip(*(run_once(cases, doctors, out) for _ in range(args.runs)), strict=True)
            rows.append((label, cases, doctors, min(walls), statistics.median(walls), max(walls), max(peaks)))
            stats[label] = json.loads((out / "manifest.json").read_text())["stats"]
            print(f"{label}: median {statistics.median(walls):.1f} s", file=sys.stderr)

    full_median = rows[-1][4]
    verdict = "met" if full_median < TARGET_SECONDS else f"missed by {full_median - TARGET_SECONDS:.1f} s"
    lines = [
        "# Synthetic world generation",
        "",
        f"`casematch synth` as a whole process, {args.runs} runs per size after a warm-up, on "
        f"{platform.machine()} with {len(os.sched_getaffinity(0))} cores, Python "
        f"{platform.python_version()}. Command: `.venv/bin/python bench/synth_generation.py`.",
        "",
        "| world | cases | doctors | min s | median s | max s | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r[0]} | {r[1]:,} | {r[2]:,} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} | {r[6]:.0f} |"
            for r in rows
        ),
        "",
        f"Target: the full world in under {TARGET_SECONDS:.0f} s — {verdict}.",
        "",
        "## World statistics (from each world's manifest)",
        "",
        "| statistic | " + " | ".join(stats) + " |",
        "|---|" + "---:|" * len(stats),
        *(f"| {key} | " + " | ".join(f"{stats[w][key]:g}" for w in stats) + " |" for key in stats["full"]),
        "",
    ]
    (BENCH_DIR / "synth.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
