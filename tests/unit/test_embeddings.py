from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ml.embeddings import EncoderSpecError, load_encoder
from ml.embeddings.base import BatchedEncoder, Encoder, TextKind, split_into_chunks
from ml.embeddings.cache import CachingEncoder, EmbeddingCache
from tests.fakes import KeywordEncoder


def test_fake_encoder_honours_the_protocol() -> None:
    encoder = KeywordEncoder({"chest": ["chest pain", "dolor torácico"]})
    assert isinstance(encoder, Encoder)
    vectors = encoder.encode_documents(["chest pain", "DOLOR TORACICO", "rash"])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 2)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert vectors[0] @ vectors[1] == pytest.approx(1.0)


def test_chunks_split_at_sentence_ends_and_cap_long_sentences() -> None:
    text = "One two three. Four five six seven. " + " ".join(f"w{i}" for i in range(25)) + "."
    chunks = split_into_chunks(text, max_words=10)
    assert chunks[0] == "One two three. Four five six seven."  # whole sentences, packed
    assert all(len(c.split()) <= 10 for c in chunks)
    assert " ".join(chunks).split() == text.split()
    assert split_into_chunks("", 10) == [""]


class _CountingEncoder(BatchedEncoder):
    """Embeds a text as [number of words, 1] so pooling is easy to check."""

    backend = "counting"

    def __init__(self, **kwargs: int | None) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.batches: list[list[str]] = []

    @property
    def dim(self) -> int:
        return 2

    def _embed(self, texts: list[str], kind: TextKind) -> npt.NDArray[np.floating]:
        self.batches.append(texts)
        return np.array([[len(t.split()), 1.0] for t in texts])

    def _version(self) -> str:
        return "1"

    def _weights_sha256(self) -> str:
        return "0" * 64


def test_batching_and_chunk_pooling() -> None:
    encoder = _CountingEncoder(batch_size=2, chunk_words=10)
    long_text = " ".join(["word"] * 25)
    vectors = encoder.encode_documents(["short one", long_text, "x"])
    assert [len(b) for b in encoder.batches] == [2, 2, 1]  # 1 + 3 chunks + 1 = 5 pieces
    assert vectors.shape == (3, 2)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert "chunk10-mean" in encoder.fingerprint.token
    assert _CountingEncoder().fingerprint.token != encoder.fingerprint.token
    with pytest.raises(TypeError):
        encoder.encode_documents("one string")


def test_cache_encodes_each_text_once_and_persists(tmp_path: Path) -> None:
    inner = KeywordEncoder({"fever": ["fever", "fiebre"]})
    path = tmp_path / "cache.sqlite"
    cached = CachingEncoder(inner, EmbeddingCache(path))
    first = cached.encode_documents(["fever", "fiebre", "fever"])
    again = cached.encode_documents(["fever", "fiebre"])
    assert cached.misses == 2 and inner.calls == 1
    np.testing.assert_array_equal(first[:2], again)
    reopened = CachingEncoder(inner, EmbeddingCache(path))
    reopened.encode_documents(["fever"])
    assert reopened.misses == 0
    reopened.forget(["fever"])
    reopened.encode_documents(["fever"])
    assert reopened.misses == 1
    cached.encode_queries(["fever"])  # queries and documents are cached apart
    assert cached.misses == 3
    cached.forget(["fever"])  # erasure drops both
    cached.encode_queries(["fever"])
    cached.encode_documents(["fever"])
    assert cached.misses == 5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("word2vec", "not one of"),
        ("sentence-transformers:", "not one of"),
        ("use?chunk_words=many", "whole number"),
        ("use?threads=3", "not one of"),
        ("sentence-transformers:/no/such/model", "neither a folder nor an installed package"),
    ],
)
def test_bad_encoder_specs_are_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises((EncoderSpecError, ValueError), match=message):
        load_encoder(spec)
