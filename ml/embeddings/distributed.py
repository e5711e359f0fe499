"""Encode many texts on Ray: one encoder per actor, batches fed with back-pressure, rows in input order.

Batch jobs (indexing a world, training, re-embedding the store) encode tens of thousands of posts.
Here each of `workers` actors loads its own encoder from the spec with one thread (the weights
never travel through the object store) and encodes one batch at a time; a worker that finishes
a batch gets the next one, so a slow batch holds up one worker, not the job. Ray runs locally on
this machine's cores by default, or joins the cluster at `address` (whose nodes must have this
package and the encoder's weights installed).

Shutting down: whoever starts Ray stops it. `ray_session()` starts (or joins) a session and shuts
it down on exit only if it started it; `RayEncoder` and `encode_on_ray` open one themselves when
none is running, and join the caller's otherwise. Wrap a command that encodes several times in one
`ray_session()` to pay Ray's start-up once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any

import numpy as np

from ml.embeddings.base import Encoder, EncoderFingerprint, TextKind, Vectors
from ml.embeddings.factory import load_encoder
from ml.progress import NoProgress, Progress

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 64  # posts per hand-off: seconds of work each, and a short tail when the last ones finish
START_TIMEOUT_S = 120.0  # actors waiting this long for a CPU (a busy shared cluster) fail instead of hanging
PROBE_TIMEOUT_S = 5.0
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
Worker = Any  # a Ray actor handle of `_EncoderWorker`: its methods are looked up at run time


class RayUnavailableError(ConnectionError):
    """No Ray cluster answers at the configured address, or its actors cannot start."""


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[None]:
    """A Ray session for the block: joined if one is running, else started and shut down on exit.

    `address=None` starts a local Ray on `num_cpus` (default: the cores this process may use), with
    no dashboard and quiet logs; otherwise it connects to the cluster at `address` ("host:port",
    "ray://host:port" or "auto"), failing fast with `RayUnavailableError` if nothing answers.
    """
    import ray

    if ray.is_initialized():
        if address is not None:
            logger.debug("Ray is running already: using its session, not connecting to %s", address)
        yield
        return
    main_thread = threading.current_thread() is threading.main_thread()
    on_sigterm = signal.getsignal(signal.SIGTERM) if main_thread else None
    _start_ray(address, num_cpus=num_cpus)
    try:
        yield
    finally:
        ray.shutdown()
        if on_sigterm is not None:  # ray.init installed its own; the process is Ray-free again
            signal.signal(signal.SIGTERM, on_sigterm)


class RayEncoder:
    """An `Encoder` whose work runs on Ray actors, each holding its own copy of `encoder_spec`.

    Use it as a context manager (or call `close`): that stops its actors, and Ray if it started it.
    """

    def __init__(
        self,
        encoder_spec: str,
        *,
        address: str | None = None,
        workers: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1 or None, got {workers}")
        import ray

        self.encoder_spec = encoder_spec
        self.batch_size = batch_size
        self._actors: list[Worker] = []
        self._fingerprint: EncoderFingerprint | None = None
        self._session = ExitStack()
        started = time.perf_counter()
        self._session.enter_context(ray_session(address))
        try:
            cpus = _cluster_cpus()
            self.workers = workers or max(1, int(cpus))
            # More workers than CPUs would leave some unscheduled forever; share the CPUs instead.
            actor_class = ray.remote(_EncoderWorker).options(num_cpus=min(1.0, cpus / self.workers))
            self._actors = [actor_class.remote(encoder_spec) for _ in range(self.workers)]
            loads = [actor.load.remote() for actor in self._actors]
            ready, _ = ray.wait(loads, num_returns=len(loads), timeout=start_timeout)
            if len(ready) < len(loads):
                raise RayUnavailableError(
                    f"{len(loads) - len(ready)} of {len(loads)} encoder workers did not start within "
                    f"{start_timeout:.0f} s (the cluster has {cpus:g} CPUs); ask for fewer workers"
                )
            described: list[tuple[int, str]] = [_get(ref) for ref in loads]
        except BaseException:
            self.close()
            raise
        self.dim, self.name = described[0]  # the vectors are the in-process encoder's: so is the name
        logger.info(
            "ray encoder %s: %d workers ready in %.1f s",
            encoder_spec,
            self.workers,
            time.perf_counter() - started,
        )

    @property
    def fingerprint(self) -> EncoderFingerprint:
        """The workers' encoder's fingerprint: the same as the in-process encoder's for the spec."""
        if self._fingerprint is None:
            self._fingerprint = _get(self._live_actors()[0].fingerprint.remote())
        return self._fingerprint

    def encode_documents(self, texts: Sequence[str], *, progress: Progress | None = None) -> Vectors:
        return self._encode(texts, "document", progress or NoProgress())

    def encode_queries(self, texts: Sequence[str], *, progress: Progress | None = None) -> Vectors:
        return self._encode(texts, "query", progress or NoProgress())

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        self._session.close()

    def __enter__(self) -> RayEncoder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _live_actors(self) -> list[Worker]:
        if not self._actors:
            raise RuntimeError(f"RayEncoder({self.encoder_spec!r}) is closed")
        return self._actors

    def _encode(self, texts: Sequence[str], kind: TextKind, progress: Progress) -> Vectors:
        import ray

        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one string")
        idle = list(self._live_actors())
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo = deque(range(0, len(texts), self.batch_size))
        running: dict[Any, tuple[Worker, int]] = {}  # result ref -> (worker, first row)
        # Each worker holds one batch at a time: the back-pressure that keeps texts and vectors in
        # the object store bounded, and a short tail (a lone batch) when the work runs out.
        while todo or running:
            while idle and todo:
                actor, start = idle.pop(), todo.popleft()
                ref = actor.encode.remote(list(texts[start : start + self.batch_size]), kind)
                running[ref] = (actor, start)
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                actor, start = running.pop(ref)
                vectors = _get(ref)
                out[start : start + len(vectors)] = vectors
                progress.advance(len(vectors))
                idle.append(actor)
        return out


class BatchJobEncoder:
    """The encoder of a batch job (training, indexing a world): in-process on one thread until the
    job has asked for `ray_from` texts, then on Ray, started then and kept until `close`.

    Ray's start-up (5-10 s) pays off only past a few hundred posts, one thread encoding about 18
    posts/s; jobs ask in chunks (a progress bar's steps), so the count runs over calls: a job
    smaller than `ray_from` finishes without Ray at all. One thread in-process, not one per core:
    two BLAS threads on this encoder's small matrices were 3.4x slower than one
    (bench/ray_embedding.md). The vectors are the same either way, so is the fingerprint.
    """

    def __init__(
        self,
        local: Encoder,
        encoder_spec: str,
        *,
        address: str | None = None,
        workers: int | None = None,
        ray_from: int = 1000,
    ) -> None:
        if ray_from < 0:
            raise ValueError(f"ray_from must be >= 0, got {ray_from}")
        self.local = local
        self.encoder_spec = encoder_spec
        self.address = address
        self.workers = workers
        self.ray_from = ray_from
        self.asked = 0  # texts asked for so far
        self._ray: RayEncoder | None = None

    @property
    def dim(self) -> int:
        return self.local.dim

    @property
    def name(self) -> str:
        return self.local.name

    @property
    def fingerprint(self) -> EncoderFingerprint:
        return self.local.fingerprint

    @property
    def on_ray(self) -> bool:
        return self._ray is not None

    def encode_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encoder_for(len(texts)).encode_documents(texts)

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encoder_for(len(texts)).encode_queries(texts)

    def _encoder_for(self, count: int) -> Encoder:
        self.asked += count
        if self._ray is None and count and self.asked > self.ray_from:
            self._ray = RayEncoder(self.encoder_spec, address=self.address, workers=self.workers)
            if self._ray.fingerprint != self.local.fingerprint:
                self.close()
                raise RuntimeError(f"Ray's {self.encoder_spec!r} encoder is not this process's one")
        return self._ray if self._ray is not None else self.local

    def close(self) -> None:
        if self._ray is not None:
            self._ray.close()
            self._ray = None

    def __enter__(self) -> BatchJobEncoder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def encode_on_ray(
    texts: Sequence[str],
    encoder_spec: str,
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> Vectors:
    """Document vectors of `texts` (float32, one row per text, in their order), encoded on Ray.

    `workers` defaults to the CPUs Ray reports (never more than there are batches); `progress`
    is advanced after each batch (the caller names the stage).
    """
    with ray_session(address):
        batches = max(1, -(-len(texts) // batch_size))
        workers = min(workers or max(1, int(_cluster_cpus())), batches)
        with RayEncoder(encoder_spec, workers=workers, batch_size=batch_size) as encoder:
            return encoder.encode_documents(texts, progress=progress)


class _EncoderWorker:
    """One Ray actor's encoder, loaded by the actor itself with one thread."""

    def __init__(self, encoder_spec: str) -> None:
        self._spec = encoder_spec
        self._encoder: Encoder | None = None

    def load(self) -> tuple[int, str]:
        encoder = load_encoder(self._spec, threads=1)
        encoder.encode_documents(["warm-up"])  # lazy weights load now, not in the first batch
        self._encoder = encoder
        return encoder.dim, encoder.name

    def fingerprint(self) -> EncoderFingerprint:
        return self._loaded().fingerprint

    def encode(self, texts: list[str], kind: TextKind) -> Vectors:
        encoder = self._loaded()
        return encoder.encode_queries(texts) if kind == "query" else encoder.encode_documents(texts)

    def _loaded(self) -> Encoder:
        assert self._encoder is not None, "encoder worker used before load()"
        return self._encoder


def _start_ray(address: str | None, *, num_cpus: int | None) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home from a batch job
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        cpus = num_cpus or len(os.sched_getaffinity(0))
        # "local": a fresh Ray on this machine, whatever RAY_ADDRESS says. Ray renices its workers
        # to 15 by default; a batch job's workers keep its own priority instead (run the command
        # under `nice` to yield to the service), as the in-process encoder they replace would.
        ray.init(
            address="local",
            num_cpus=cpus,
            include_dashboard=False,
            _system_config={"worker_niceness": 0},
            **quiet,
        )
        logger.info("started a local Ray with %d CPUs", cpus)
        return
    _probe(address)
    try:
        ray.init(address=address, **quiet)
    except ConnectionError as exc:
        raise RayUnavailableError(f"no Ray cluster at {address!r}: {exc}") from exc
    logger.info("joined the Ray cluster at %s", address)


def _probe(address: str) -> None:
    """Fail in seconds if nothing listens at `address` (Ray itself retries for many minutes)."""
    if address == "auto":  # Ray looks up the running local cluster, and fails fast itself
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise RayUnavailableError(f"Ray address {address!r} is not host:port (or ray://host:port, auto)")
    if host in _LOOPBACK and not address.startswith("ray://"):
        import ray.util

        host = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]  # Ray dials the node's address, not the loopback
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise RayUnavailableError(
            f"no Ray cluster at {address!r} ({host}:{port}: {exc}); start one with `ray start --head`, "
            "or leave the address unset to run Ray on this machine"
        ) from None


def _cluster_cpus() -> float:
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return float(resources.get("CPU", 1.0))


def _get(ref: Any) -> Any:
    """`ray.get`, raising a worker's own exception (e.g. `EncoderSpecError`) rather than Ray's wrapper."""
    import ray
    from ray.exceptions import RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, Exception) and not isinstance(cause, RayTaskError):
            raise cause from exc  # the chained RayTaskError carries the worker's traceback
        raise
