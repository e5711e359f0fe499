"""The encoder contract: texts in, L2-normalised float32 vectors out, with an identity that travels."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
TextKind = Literal["query", "document"]


@dataclass(frozen=True, slots=True)
class EncoderFingerprint:
    """What makes two encoders' vectors comparable: same backend, version, weights and size."""

    backend: str
    version: str
    weights_sha256: str
    dim: int
    long_text: str  # how texts longer than a chunk are handled; changes the vectors too

    @property
    def token(self) -> str:
        """One string to store next to an index or model and compare on load."""
        return f"{self.backend}/{self.version}/{self.weights_sha256[:16]}/{self.dim}/{self.long_text}"


class FingerprintMismatchError(ValueError):
    """Vectors made by one encoder were about to be compared with another's."""

    def __init__(self, *, expected: str, actual: str, what: str) -> None:
        super().__init__(
            f"{what} was built with encoder {expected!r} but the current encoder is {actual!r}; "
            "rebuild it with the current encoder (or configure the encoder it was built with)"
        )
        self.expected = expected
        self.actual = actual


@runtime_checkable
class Encoder(Protocol):
    @property
    def dim(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def fingerprint(self) -> EncoderFingerprint: ...

    def encode_queries(self, texts: Sequence[str]) -> Vectors: ...

    def encode_documents(self, texts: Sequence[str]) -> Vectors: ...


def l2_normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    out = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def split_into_chunks(text: str, max_words: int) -> list[str]:
    """Split `text` at sentence ends into chunks of at most about `max_words` words.

    A sentence longer than `max_words` is cut at word boundaries.
    """
    chunks: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        words = sentence.split()
        while len(words) > max_words:
            if current:
                chunks.append(" ".join(current))
                current = []
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if current and len(current) + len(words) > max_words:
            chunks.append(" ".join(current))
            current = []
        current.extend(words)
    if current or not chunks:
        chunks.append(" ".join(current))
    return chunks


class BatchedEncoder(ABC):
    """Batching, long-text handling and normalisation around one backend's `_embed`.

    Long texts: with `chunk_words` set, a text of more words is split at sentence ends into
    chunks of about that many words, each chunk embedded, and the chunk vectors averaged
    (weighted by length) and renormalised. With `chunk_words=None` the backend sees the whole
    text and applies its own limit (e.g. truncation at 256 word pieces).
    """

    backend: str = ""

    def __init__(self, *, batch_size: int = 32, chunk_words: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if chunk_words is not None and chunk_words < 8:
            raise ValueError(f"chunk_words must be >= 8 or None, got {chunk_words}")
        self.batch_size = batch_size
        self.chunk_words = chunk_words

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @property
    def name(self) -> str:
        return self.backend

    @property
    def fingerprint(self) -> EncoderFingerprint:
        return EncoderFingerprint(
            backend=self.backend,
            version=self._version(),
            weights_sha256=self._weights_sha256(),
            dim=self.dim,
            long_text=f"chunk{self.chunk_words}-mean" if self.chunk_words else "backend",
        )

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, "query")

    def encode_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, "document")

    @abstractmethod
    def _embed(self, texts: list[str], kind: TextKind) -> npt.NDArray[np.floating]:
        """Raw vectors for one batch of (short enough) texts."""

    @abstractmethod
    def _version(self) -> str: ...

    @abstractmethod
    def _weights_sha256(self) -> str: ...

    def _encode(self, texts: Sequence[str], kind: TextKind) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("pass a sequence of texts, not one string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        pieces: list[str] = []
        owners: list[int] = []
        for i, text in enumerate(texts):
            chunks = split_into_chunks(text, self.chunk_words) if self.chunk_words else [text]
            pieces.extend(chunks)
            owners.extend([i] * len(chunks))
        vectors = np.concatenate(
            [
                l2_normalise(self._embed(pieces[start : start + self.batch_size], kind))
                for start in range(0, len(pieces), self.batch_size)
            ]
        )
        if len(pieces) == len(texts):
            return vectors
        weights = np.array([max(1, len(p.split())) for p in pieces], dtype=np.float32)
        pooled = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(pooled, np.array(owners), vectors * weights[:, None])
        return l2_normalise(pooled)
