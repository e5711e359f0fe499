"""Encoding on Ray gives the in-process encoder's vectors, in order, and fails fast and clean."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ml.embeddings import EncoderSpecError, load_encoder
from ml.embeddings.distributed import BatchJobEncoder, RayEncoder, RayUnavailableError, encode_on_ray
from ml.evaluation.corpora import load_codiesp, load_mtsamples

ray = pytest.importorskip("ray")


class _CountingProgress:
    def __init__(self) -> None:
        self.advances: list[int] = []

    def stage(self, name: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        self.advances.append(n)


def test_ray_vectors_equal_the_in_process_encoders_in_input_order() -> None:
    english = [note.text for note in load_mtsamples("dev")[:25]]
    texts = english + [doc.spanish for doc in load_codiesp("dev")[:25]]
    expected = load_encoder("use", threads=1).encode_documents(texts)
    progress = _CountingProgress()

    vectors = encode_on_ray(texts, "use", workers=2, batch_size=8, progress=progress)

    assert vectors.dtype == np.float32 and vectors.shape == (50, 512)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert sorted(progress.advances) == [2, 8, 8, 8, 8, 8, 8]  # one advance per finished batch
    assert not ray.is_initialized()  # the Ray it started is shut down


def test_a_bad_spec_raises_the_encoders_own_error_and_stops_ray() -> None:
    with pytest.raises(EncoderSpecError, match="nonsense"):
        RayEncoder("nonsense", workers=1)
    assert not ray.is_initialized()


@pytest.mark.parametrize("address", ["127.0.0.1:1", "no-such-host.invalid:6379", "not an address"])
def test_an_unreachable_address_fails_fast_with_the_address_in_the_message(address: str) -> None:
    started = time.perf_counter()
    with pytest.raises(RayUnavailableError, match=address):
        encode_on_ray(["chest pain"], "use", address=address)
    assert time.perf_counter() - started < 30  # Ray alone retries for minutes
    assert not ray.is_initialized()


def test_a_batch_job_moves_onto_ray_once_it_has_asked_for_enough_texts() -> None:
    texts = [note.text for note in load_mtsamples("dev")[:12]]
    local = load_encoder("use", threads=1)
    expected = local.encode_documents(texts)
    with BatchJobEncoder(local, "use", workers=2, ray_from=8) as job:
        first = job.encode_documents(texts[:8])  # 8 asked: still in-process, no Ray
        assert not job.on_ray and not ray.is_initialized()
        rest = job.encode_documents(texts[8:])  # 12 asked: past ray_from
        assert job.on_ray and ray.is_initialized()
        assert job.fingerprint == local.fingerprint
    assert not ray.is_initialized(), "closing the job stops the Ray it started"
    np.testing.assert_allclose(np.vstack([first, rest]), expected, atol=1e-5)
