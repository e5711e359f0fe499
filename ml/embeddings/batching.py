"""Micro-batching: the posts of concurrent route calls are encoded together, in one encoder call.

Each route call encodes its post. One post at a time, the encoder pays its per-call overhead for
every request, and the request threads take turns in it. Here a request that finds the encoder
idle becomes the *leader*: it encodes its own post at once, in its own thread (alone, a request
pays no hand-off, no wait for company). Requests that arrive meanwhile queue up; when the leader
is done it hands the lead to the oldest waiting request, which encodes everything queued (up to
`max_batch`) in one call. Under load the batches grow by themselves.

A dedicated encoder thread was tried first. Every request then paid a hand-off to that thread
and back; here a lone request encodes in its own thread and pays none.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ml.embeddings.base import Encoder

Vector = npt.NDArray[np.float32]


@dataclass(eq=False, slots=True)
class _Job:
    text: str
    ready: threading.Event = field(default_factory=threading.Event)  # done, or asked to lead
    lead: bool = False
    vector: Vector | None = None
    error: BaseException | None = None


class QueryBatcher:
    def __init__(self, encoder: Encoder, *, max_batch: int = 16) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.encoder = encoder
        self.max_batch = max_batch
        self.batches = 0  # encoder calls made, and the posts they held: their ratio is the mean batch
        self.posts = 0
        self._lock = threading.Lock()
        self._waiting: deque[_Job] = deque()
        self._leading = False  # some request is encoding a batch now

    def encode(self, text: str) -> Vector:
        """The post's vector (encoded alone, or together with posts of concurrent requests)."""
        job = _Job(text)
        with self._lock:
            self._waiting.append(job)
            if not self._leading:
                self._leading = job.lead = True
        if not job.lead:
            job.ready.wait()
        if job.lead:  # its own post is first in line: the batch it encodes holds it
            self._encode_batch()
        if job.error is not None:
            raise job.error
        assert job.vector is not None
        return job.vector

    def _encode_batch(self) -> None:
        with self._lock:
            batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
        try:
            vectors = np.asarray(self.encoder.encode_queries([job.text for job in batch]), dtype=np.float32)
        except Exception as error:  # every request of the batch gets the error; none hangs
            for job in batch:
                job.error = error
        else:
            for job, vector in zip(batch, vectors, strict=True):
                job.vector = vector
        with self._lock:
            self.batches += 1
            self.posts += len(batch)
            if self._waiting:  # hand the lead to the oldest waiting request
                successor = self._waiting[0]
                successor.lead = True
                successor.ready.set()
            else:
                self._leading = False
        for job in batch:
            job.lead = False
            job.ready.set()
