"""Run the real `casematch serve` as a subprocess, for browser, crash and restart tests.

`serving(env)` starts the server on a free loopback port with `env` over the current
environment, waits until /readyz answers 200 and stops it with SIGTERM on exit. Its output goes
to `server.log` in $CASEMATCH_HOME (appended, so a restarted server's log follows the first's).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

READY_PATH = "/readyz"
STOP_TIMEOUT = 30.0


class ServerStartError(RuntimeError):
    """The server exited or did not become ready in time; the message holds its log's tail."""


@dataclass
class ServerProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def worker_pids(self) -> set[int]:
        """The processes serving behind the port (with `--workers` above 1, the supervisor's children)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            pids = {int(pid) for pid in children.read_text().split()}
        except OSError:
            return set()
        # uvicorn's multiprocessing also starts a resource tracker: only processes that serve count
        return {pid for pid in pids if "resource_tracker" not in _cmdline(pid)}

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown handler runs, nothing is flushed."""
        self._signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait for a clean exit (SIGKILL after `timeout` seconds); the exit code."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def _signal(self, signum: signal.Signals) -> None:
        # The server leads its own process group: its helper processes get the signal too.
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def casematch_command(*args: str) -> list[str]:
    """`casematch ARGS` from the running interpreter's environment (service.cli has no __main__)."""
    script = Path(sys.executable).with_name("casematch")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from service.cli import app; app()", *args]


@contextmanager
def serving(
    env: Mapping[str, str], *, timeout: float = 600, port: int | None = None, workers: int = 1
) -> Iterator[ServerProcess]:
    """The real server, ready to answer, for the duration of the block.

    Args:
        env: variables set over os.environ (CASEMATCH_HOME, CASEMATCH_API_KEYS, ...).
        timeout: seconds to wait for /readyz (a first start seeds and indexes the world).
        port: a fixed port, e.g. to restart on the same address; default: a free one.
        workers: `casematch serve --workers` (processes behind the port).
    """
    merged = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    home = merged.get("CASEMATCH_HOME")
    log_dir = Path(home) if home else Path(tempfile.mkdtemp(prefix="casematch-server-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "server.log"
    port = port or free_port()
    with log_path.open("ab") as log:
        log.write(f"--- starting casematch serve on port {port}\n".encode())
        log.flush()
        process = subprocess.Popen(
            casematch_command("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            env=merged,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C in pytest does not reach it
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_ready(server, timeout)
        yield server
    finally:
        server.stop()


def _wait_until_ready(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerStartError(
                f"casematch serve exited with {server.process.returncode} before it was ready:\n"
                f"{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(server.base_url + READY_PATH, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or not ready (503)
        time.sleep(0.25)
    raise ServerStartError(f"casematch serve was not ready after {timeout:.0f} s:\n{server.log_tail()}")
