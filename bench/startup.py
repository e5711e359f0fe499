"""Start-up time of `casematch serve` from an empty home, then of restarts on the same home.

    .venv/bin/python bench/startup.py [--world world|sample] [--in-place] [--keep-home] [--no-crash]

What `make run` does on a fresh clone, timed: the committed HEAD is cloned (`git clone`, so nothing
uncommitted, no var/, no generated world, no caches) into a temporary folder, and the clone's own
code (PYTHONPATH) runs from it with this venv's packages, on its defaults: home `var/` and the
clone's `data/synthetic`. (`--in-place`: this checkout's code with a new temporary CASEMATCH_HOME
and a synthetic dir holding only the committed `sample`.) `casematch serve --port <free port>`
then generates the world if it is missing,
trains, registers and promotes a champion (`casematch bootstrap`), seeds and de-identifies the
store, builds the index and listens. This script polls GET /readyz until it answers 200 and
records the seconds to ready, the CLI's stage bars (each with its own elapsed time) and when each
milestone line arrived. Then it stops the server with SIGTERM and starts it again on the same home
(the restart), kills that one with SIGKILL and starts it a third time (restart after a crash; skip
with --no-crash).

--world sample (default) is the committed 2,000-case sample `make run` seeds: the first start
takes about five minutes on 2 cores. --world world generates and seeds the 20,000-case world
(`CASEMATCH_SEED_WORLD=world make run`) and takes a quarter of an hour or more. Both train on the
real corpora vendored in data/corpora, as `make run` does.

The server's own output goes to server.log in the temporary folder (deleted at the end unless
--keep-home); only stage bars and milestone lines are echoed to stderr, never request or case
text. CASEMATCH_* variables of this shell are not passed on, and the server runs in the
temporary folder (no .env), so it starts with the defaults `make run` uses. The report (markdown,
on stdout) is written to --out; by default to bench/startup.md for the default (sample) world
only, so a full-world run never replaces the `make run` report by accident.

The free-port and wait-until-ready logic follows tests/server_process.py, copied rather than
imported: `tests` is not importable from a bench script, and that helper sends the server's
output to a file, while this script needs each line as it arrives.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from test_ledger import current_commit

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
SAMPLE_DIR = PROJECT_ROOT / "data" / "synthetic" / "sample"
CORPORA_DIR = PROJECT_ROOT / "data" / "corpora"
# The vendored corpora `casematch bootstrap` trains on (ml.evaluation.corpora.CORPUS_FILES).
CORPORA = {name: CORPORA_DIR / f"{name}.parquet" for name in ("mtsamples", "codiesp")}
READY_PATH = "/readyz"
POLL_SECONDS = 0.25
STOP_TIMEOUT = 120.0

# A finished rich progress bar as the CLI prints it when stderr is not a terminal (once, when the
# bars' block ends): "<stage> ━━━━━━ <done>/<total> H:MM:SS".
STAGE_LINE = re.compile(
    r"^\s*(?P<name>\S.*?)\s+[\u2500-\u257f\- ]+\s"
    r"(?P<done>\d+)/(?P<total>\d+)\s+(?P<elapsed>\d+:\d\d:\d\d)\s*$"
)
# Lines of the CLI that mark the end of a phase: (pattern, what the report calls it).
MILESTONES = (
    (re.compile(r"^wrote world '(?P<world>[^']+)' .* in (?P<seconds>[\d.]+) s"), "world generated"),
    (re.compile(r"real corpora .* are not here"), "no real corpora: training on the synthetic world alone"),
    (re.compile(r"^registered case-router version (?P<version>\d+) .* in (?P<seconds>\d+) s"), "registered"),
    (re.compile(r"^version (?P<version>\d+) is the champion"), "champion promoted"),
    (re.compile(r"^API key \(every scope\)"), "API key ready"),
    (re.compile(r"^casematch serving model version"), "runtime started (store, index, model)"),
)
# JSON log messages worth a timestamp (the service's logs never hold case text).
LOG_MILESTONES = {
    "empty store: loading the synthetic world": "seeding the store",
    "Application startup complete.": "uvicorn started",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Stage:
    name: str
    done: int
    total: int
    seconds: int  # the bar's own elapsed time, whole seconds


@dataclass
class Event:
    at: float  # seconds since the process started
    what: str


@dataclass
class Run:
    label: str
    started_after: str  # what happened to the previous server: "-", "SIGTERM", "SIGKILL"
    ready_seconds: float = float("nan")
    ready_body: dict[str, object] = field(default_factory=dict)
    stages: list[Stage] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stop_signal: str = ""
    stop_seconds: float = float("nan")
    exit_code: int | None = None

    def event_at(self, what: str) -> float | None:
        return next((e.at for e in self.events if e.what == what), None)


class Server:
    """One `casematch serve` in its own process group, its output read line by line."""

    def __init__(self, run: Run, *, env: dict[str, str], cwd: Path, port: int, log_path: Path) -> None:
        self.run = run
        self.base_url = f"http://127.0.0.1:{port}"
        self._log = log_path.open("a", encoding="utf-8")
        self._log.write(f"--- {run.label}: casematch serve --port {port}\n")
        self._log.flush()
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [_casematch(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the signals reach its helpers too
        )
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            at = self.elapsed()
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self._log.write(f"[{at:8.1f}] {line}\n")
            self._log.flush()
            self._note(at, line)
        stream.close()

    def _note(self, at: float, line: str) -> None:
        if stage := STAGE_LINE.match(line):
            h, m, s = (int(x) for x in stage["elapsed"].split(":"))
            self.run.stages.append(
                Stage(stage["name"].strip(), int(stage["done"]), int(stage["total"]), 3600 * h + 60 * m + s)
            )
            log(f"[{at:7.1f} s] {self.run.label}: stage {line.strip()}")
            return
        for pattern, what in MILESTONES:
            if pattern.search(line):
                self.run.events.append(Event(at, what))
                log(f"[{at:7.1f} s] {self.run.label}: {what}")
                return
        if line.startswith("{"):
            with suppress(ValueError, AttributeError):
                message = str(json.loads(line).get("message", ""))
                for start, what in LOG_MILESTONES.items():
                    if message.startswith(start):
                        self.run.events.append(Event(at, what))
                        log(f"[{at:7.1f} s] {self.run.label}: {what}")

    def wait_until_ready(self, timeout: float, log_path: Path) -> None:
        deadline = time.monotonic() + timeout
        next_note = 60.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"casematch serve exited with {self.process.returncode} before it was ready:\n"
                    + _tail(log_path)
                )
            try:
                with urllib.request.urlopen(self.base_url + READY_PATH, timeout=5) as response:
                    if response.status == 200:
                        self.run.ready_seconds = self.elapsed()
                        self.run.ready_body = json.loads(response.read())
                        log(
                            f"[{self.run.ready_seconds:7.1f} s] {self.run.label}: ready {self.run.ready_body}"
                        )
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass  # not listening yet, or not ready (an HTTPError is a URLError)
            if self.elapsed() >= next_note:
                log(f"[{self.elapsed():7.1f} s] {self.run.label}: not ready yet")
                next_note += 60.0
            time.sleep(POLL_SECONDS)
        raise RuntimeError(f"casematch serve was not ready after {timeout:.0f} s:\n{_tail(log_path)}")

    def stop(self, signum: signal.Signals) -> None:
        """Send `signum` to the server's group and wait for it to exit (SIGKILL after a timeout)."""
        self.run.stop_signal = signum.name
        started = time.monotonic()
        self._signal(signum)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"{self.run.label}: no exit {STOP_TIMEOUT:.0f} s after {signum.name}; SIGKILL")
            self._signal(signal.SIGKILL)
            self.process.wait()
        self.run.stop_seconds = time.monotonic() - started
        self.run.exit_code = self.process.returncode
        self._reader.join(10)
        self._log.close()
        log(f"{self.run.label}: {signum.name} -> exit {self.run.exit_code} in {self.run.stop_seconds:.1f} s")

    def _signal(self, signum: signal.Signals) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


def _casematch() -> str:
    script = Path(sys.executable).with_name("casematch")
    if not script.exists():
        raise SystemExit(f"{script} not found: run this with the project's .venv/bin/python")
    return str(script)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_env(home: Path, synthetic_dir: Path, world: str) -> dict[str, str]:
    """This shell's environment without its CASEMATCH_* settings, plus the ones for this run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEMATCH_")}
    env.update(
        {
            "CASEMATCH_HOME": str(home),
            "CASEMATCH_SYNTHETIC_DIR": str(synthetic_dir),
            "CASEMATCH_SEED_WORLD": world,
            "HF_HUB_OFFLINE": env.get("HF_HUB_OFFLINE", "1"),
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "160",  # rich's width off a terminal: long stage names are not cut
        }
    )
    return env


def _git_head(checkout: Path) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def clone_project(root: Path) -> Path:
    """A fresh clone of this checkout's HEAD: what a user who runs `git clone` has."""
    clone = root / "casematch"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
    return clone


def prepare(root: Path, world: str, *, generate: bool) -> tuple[Path, Path]:
    """An empty home and a synthetic dir as a checkout has it (the committed sample, no world)."""
    home = root / "home"
    home.mkdir()
    synthetic_dir = root / "synthetic"
    synthetic_dir.mkdir()
    if world == "sample" and not generate:
        (synthetic_dir / "sample").symlink_to(SAMPLE_DIR, target_is_directory=True)
    return home, synthetic_dir


def run_server(
    run: Run,
    *,
    env: dict[str, str],
    cwd: Path,
    port: int,
    log_path: Path,
    timeout: float,
    stop_with: signal.Signals,
) -> None:
    log(f"{run.label}: starting casematch serve on port {port}")
    server = Server(run, env=env, cwd=cwd, port=port, log_path=log_path)
    try:
        server.wait_until_ready(timeout, log_path)
    finally:
        server.stop(stop_with)


def _minutes(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def _du_mib(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 2**20


def render(
    runs: Sequence[Run],
    *,
    command: str,
    world: str,
    generated: bool,
    corpora: dict[str, bool],
    cores: int,
    load: tuple[tuple[float, ...], tuple[float, ...]],
    home_mib: float,
    when: str,
    in_place: bool,
    commit: str,
) -> str:
    first = runs[0]
    champion = first.event_at("champion promoted")
    started = first.event_at("runtime started (store, index, model)")
    present = [name for name, there in corpora.items() if there]
    world_text = {
        "world": "the full synthetic world (20,000 cases, 5,000 doctors), as "
        "`CASEMATCH_SEED_WORLD=world make run` seeds it",
        "sample": "the committed sample world (2,000 cases, 500 doctors), as `make run` seeds it",
    }.get(world, f"synthetic world `{world}`")
    lines = [
        f"# Start-up time: `casematch serve` from an empty home (world `{world}`)",
        "",
        f"Command: `{command}` ({when}, commit {commit}). World: {world_text}; "
        + ("generated by the first start into an empty synthetic dir. " if generated else "")
        + ("taken as committed (`data/synthetic/sample`). " if not generated else "")
        + f"Cores: {cores} (`os.sched_getaffinity`) of {os.cpu_count()}; load average (1, 5, 15 min) "
        f"{', '.join(f'{x:.1f}' for x in load[0])} at the start and {', '.join(f'{x:.1f}' for x in load[1])} "
        "at the end, so other work may have shared the cores. Real corpora in `data/corpora`: "
        + (f"{' and '.join(present)} present, so the models trained on them too." if present else "absent.")
        + " Encoder: the default (`use`), with an empty embedding cache on the first start.",
        "",
        "Each run starts `casematch serve --port <free port>` "
        + (
            "with `CASEMATCH_HOME` and `CASEMATCH_SYNTHETIC_DIR` in a new temporary folder "
            if in_place
            else "in a fresh `git clone` of the commit above, on its own code and its defaults "
            "(home `var/`, synthetic dir `data/synthetic`), "
        )
        + "and no other `CASEMATCH_*` variable, and polls `GET /readyz` every 0.25 s; *ready* is "
        "its first 200.",
        "",
        "| run | previous server was stopped by | seconds to ready | indexed cases "
        "| model version | stop | exit code |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.label} | {r.started_after} | {_minutes(r.ready_seconds)} | "
            f"{r.ready_body.get('indexed_cases', '-')} | "
            f"{r.ready_body.get('model_version', '-')} | {r.stop_signal} after {r.stop_seconds:.1f} s | "
            f"{r.exit_code} |"
        )
    lines += [
        "",
        f"First start: a registered champion after {_minutes(champion)}; from there "
        f"{_minutes(None if champion is None or started is None else started - champion)} to seed, "
        "de-identify and index the cases and load the model, and "
        f"{_minutes(None if started is None else first.ready_seconds - started)} more until /readyz "
        f"answered. The home held {home_mib:.0f} MiB after the first start.",
        "",
    ]
    if any(r.exit_code == -signal.SIGTERM for r in runs):
        lines += [
            "Exit code -15: after its graceful shutdown uvicorn re-raises SIGTERM, and Python's default "
            "action for it ends the process; the runtime was closed before that, in the app's shutdown "
            "(since 5a8cb82: champion watcher stopped, index snapshot saved, store closed).",
            "",
        ]
    if world == "world":
        lines += [
            "README (before this script): 28 minutes to a registered champion, then 3 minutes to seed, "
            "de-identify and index the 20,000 cases; a restart serves after 19 s.",
            "",
        ]
    lines += [
        "## Stages",
        "",
        "The CLI's progress bars, each with the elapsed time rich measured for it (whole seconds; off "
        "a terminal the bars are printed when their block ends). A stage with nothing to do (0/0) "
        "counts until its block ends.",
        "",
        "| run | stage | items | seconds |",
        "|---|---|---:|---:|",
    ]
    for r in runs:
        lines += [f"| {r.label} | {s.name} | {s.done}/{s.total} | {s.seconds} |" for s in r.stages]
    lines += [
        "",
        "## Milestones",
        "",
        "When each milestone line of the server's output arrived, in seconds since its process started.",
        "",
        "| run | seconds | milestone |",
        "|---|---:|---|",
    ]
    for r in runs:
        lines += [f"| {r.label} | {e.at:.1f} | {e.what} |" for e in r.events]
        lines.append(f"| {r.label} | {r.ready_seconds:.1f} | /readyz 200 |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--world",
        default="sample",
        help="seed world: 'sample' (the committed 2,000 cases, what make run serves; minutes) or "
        "'world' (20,000 generated cases, CASEMATCH_SEED_WORLD=world; a quarter of an hour or more)",
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="generate the sample too instead of taking the committed one (the full world always is)",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="run this checkout's code (uncommitted changes too) instead of a fresh clone of HEAD",
    )
    parser.add_argument(
        "--keep-home", action="store_true", help="keep the temporary home, synthetic dir and server.log"
    )
    parser.add_argument(
        "--no-crash", action="store_true", help="skip the third start, after a SIGKILL of the second"
    )
    parser.add_argument("--timeout", type=float, default=7200, help="seconds each start may take to be ready")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown report (default: bench/startup.md for --world sample; other worlds: stdout only)",
    )
    args = parser.parse_args()
    if args.world not in ("world", "sample"):
        parser.error(f"--world {args.world!r}: choose 'world' or 'sample' (the worlds bootstrap can make)")
    out = args.out or (BENCH_DIR / "startup.md" if args.world == "sample" else None)

    root = Path(tempfile.mkdtemp(prefix="casematch-startup-"))
    generated = args.world != "sample" or args.generate
    if args.in_place:
        home, synthetic_dir = prepare(root, args.world, generate=args.generate)
        cwd = root
        env = server_env(home, synthetic_dir, args.world)
    else:
        cwd = clone_project(root)
        home, synthetic_dir = cwd / "var", cwd / "data" / "synthetic"
        env = server_env(home, synthetic_dir, args.world) | {"PYTHONPATH": str(cwd)}
    log_path = root / "server.log"
    port = free_port()
    corpora = {name: path.exists() for name, path in CORPORA.items()}
    load_start = os.getloadavg()
    log(f"temporary folder {root}; server output in {log_path}")
    # (run, how it is stopped): the signal that ends one run is what the next one starts after.
    plan = [(Run("first start (empty home)", "-"), signal.SIGTERM)]
    if args.no_crash:
        plan.append((Run("restart", "SIGTERM"), signal.SIGTERM))
    else:
        plan.append((Run("restart", "SIGTERM"), signal.SIGKILL))
        plan.append((Run("restart after a crash", "SIGKILL"), signal.SIGTERM))
    runs = [run for run, _ in plan]
    home_mib = 0.0
    try:
        for n, (run, stop_with) in enumerate(plan):
            run_server(
                run,
                env=env,
                cwd=cwd,
                port=port,
                log_path=log_path,
                timeout=args.timeout,
                stop_with=stop_with,
            )
            if n == 0:
                home_mib = _du_mib(home)
    except (RuntimeError, KeyboardInterrupt) as failure:
        log(f"failed: {failure}")
        log(f"kept {root} for a look (server output: {log_path})")
        raise SystemExit(1) from None
    command = ".venv/bin/python bench/startup.py" + (
        "" if args.world == "sample" else f" --world {args.world}"
    )
    command += " --generate" if args.generate else ""
    command += " --in-place" if args.in_place else ""
    command += " --no-crash" if args.no_crash else ""
    report = render(
        runs,
        command=command,
        world=args.world,
        generated=generated,
        corpora=corpora,
        cores=len(os.sched_getaffinity(0)),
        load=(load_start, os.getloadavg()),
        home_mib=home_mib,
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        in_place=args.in_place,
        # a clone is exactly HEAD, whatever this checkout holds besides
        commit=current_commit() if args.in_place else _git_head(cwd),
    )
    print(report)
    if out is not None:
        out.write_text(report)
        log(f"wrote {out}")
    if args.keep_home:
        log(f"kept {root} (home {home}, synthetic dir {synthetic_dir})")
    else:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
