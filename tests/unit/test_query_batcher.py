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


def test_an_encoder_failure_reaches_the_callers_of_that_batch_only() -> None:
    encoder = SlowEncoder(fail_on=POSTS[0])
    batcher = QueryBatcher(encoder, max_batch=1)
    with pytest.raises(RuntimeError, match="out of memory"):
        batcher.encode(POSTS[0])
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(batcher.encode, POSTS[1:9]))
    assert len(results) == 8, "the batcher goes on after a failure; nobody hangs"
