"""Micro-batching of route posts: each caller gets its own post's vector, batches form under load."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ml.embeddings.base import Vectors
from ml.embeddings.batching import QueryBatcher
from tests.fakes import KeywordEncoder

CONCEPTS = {"heart": ["chest", "troponin"], "lung": ["cough", "tos"], "skin": ["rash"]}
POSTS = [f"{word} case {i}" for i, word in enumerate(["chest", "cough", "rash", "tos"] * 10)]


class SlowEncoder(KeywordEncoder):
    """Takes a while per call, as a real encoder does, so that posts queue up behind a call."""

    def __init__(self, *, fail_on: str | None = None) -> None:
        super().__init__(CONCEPTS)
        self.fail_on = fail_on
        self.sizes: list[int] = []
        self.threads: set[str] = set()

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        self.sizes.append(len(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(0.02)
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("encoder out of memory")
        return super().encode_queries(texts)


def test_concurrent_posts_get_their_own_vectors_in_fewer_encoder_calls() -> None:
    encoder = SlowEncoder()
    batcher = QueryBatcher(encoder, max_batch=8)
    with ThreadPoolExecutor(max_workers=16) as pool:
        vectors = list(pool.map(batcher.encode, POSTS))
    np.testing.assert_allclose(np.stack(vectors), KeywordEncoder(CONCEPTS).encode_queries(POSTS))
    assert sum(encoder.sizes) == len(POSTS) and max(encoder.sizes) <= 8
    assert len(encoder.sizes) < len(POSTS) / 2, f"batches of {encoder.sizes}"
    assert (batcher.batches, batcher.posts) == (len(encoder.sizes), len(POSTS))


def test_a_lone_post_is_encoded_at_once_in_the_callers_own_thread() -> None:
    encoder = SlowEncoder()
    batcher = QueryBatcher(encoder, max_batch=64)
    for post in POSTS[:3]:
        batcher.encode(post)
    assert encoder.sizes == [1, 1, 1], "nothing waits for company"
    assert encoder.threads == {threading.current_thread().name}, "no hand-off to another thread"


class GatedEncoder(KeywordEncoder):
    """Each of the first `gated` calls waits until the test opens its gate, so the test decides who
    queues behind whom; call number `fail_call` (from 0) fails."""

    def __init__(self, *, gated: int, fail_call: int) -> None:
        super().__init__(CONCEPTS)
        self.gates = [threading.Event() for _ in range(gated)]
        self.started = [threading.Event() for _ in range(gated)]
        self.fail_call = fail_call
        self.batches: list[list[str]] = []

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        call = len(self.batches)
        self.batches.append(list(texts))
        if call < len(self.gates):
            self.started[call].set()
            assert self.gates[call].wait(timeout=10), f"call {call} was never let through"
        if call == self.fail_call:
            raise RuntimeError("encoder out of memory")
        return super().encode_queries(texts)


def _queued(batcher: QueryBatcher, n: int) -> None:
    """Wait until `n` posts wait behind the running encoder call (the batcher's queue is the only
    place that says they queued; the alternative, sleeping, would make the test racy)."""
    deadline = time.monotonic() + 10
    while len(batcher._waiting) < n:
        assert time.monotonic() < deadline, f"{len(batcher._waiting)} of {n} posts queued"
        time.sleep(0.001)


def test_an_encoder_failure_reaches_the_callers_of_that_batch_only() -> None:
    """Three batches: a lone leader, four posts that fail together, three posts queued behind them."""
    lone, failing, after = POSTS[:1], POSTS[1:5], POSTS[5:8]
    encoder = GatedEncoder(gated=2, fail_call=1)
    batcher = QueryBatcher(encoder, max_batch=8)
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(batcher.encode, lone[0])
        assert encoder.started[0].wait(timeout=10)
        second = [pool.submit(batcher.encode, post) for post in failing]
        _queued(batcher, len(failing))
        encoder.gates[0].set()  # the leader finishes; the four queued posts become one batch
        assert encoder.started[1].wait(timeout=10)
        third = [pool.submit(batcher.encode, post) for post in after]
        _queued(batcher, len(after))
        encoder.gates[1].set()  # that batch fails while three more posts wait behind it

        expected = KeywordEncoder(CONCEPTS).encode_queries(POSTS[:9])
        np.testing.assert_allclose(first.result(timeout=10), expected[0])
        for future in second:
            with pytest.raises(RuntimeError, match="out of memory"):
                future.result(timeout=10)
        np.testing.assert_allclose(np.stack([f.result(timeout=10) for f in third]), expected[5:8])
    assert encoder.batches == [lone, failing, after]
    assert (batcher.batches, batcher.posts) == (3, 8)
    np.testing.assert_allclose(batcher.encode(POSTS[8]), expected[8])  # and it goes on as before
