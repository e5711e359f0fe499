"""A content-hash cache of embeddings, so re-encoding unchanged text costs nothing."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ml.embeddings.base import Encoder, EncoderFingerprint, TextKind, Vectors


class EmbeddingCache:
    """Vectors by sha256(encoder fingerprint, kind, text) in a SQLite file (or in memory).

    Keys are hashes, so the cache holds no text; vectors of erased cases can be dropped with
    `forget`.
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: the last writes may go, never corrupt
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"
            )
            self._db.commit()

    @staticmethod
    def key(fingerprint: EncoderFingerprint, kind: TextKind, text: str) -> bytes:
        return hashlib.sha256(f"{fingerprint.token}\0{kind}\0{text}".encode()).digest()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                batch = list(keys[start : start + 500])
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", batch)
                found.update(rows.fetchall())
        return found

    def put_many(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", items)
            self._db.commit()

    def forget(self, keys: Sequence[bytes]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM vectors WHERE key = ?", [(k,) for k in keys])
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachingEncoder:
    """An `Encoder` that asks its inner encoder only for texts it has not seen."""

    def __init__(self, inner: Encoder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self._fingerprint = inner.fingerprint
        self.misses = 0  # texts actually encoded, for tests and metrics

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def fingerprint(self) -> EncoderFingerprint:
        return self._fingerprint

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, "query")

    def encode_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(texts, "document")

    def forget(self, texts: Sequence[str]) -> None:
        """Drop every cached vector of these texts, as documents and as queries (an erased case)."""
        kinds: tuple[TextKind, ...] = ("document", "query")
        self.cache.forget([EmbeddingCache.key(self._fingerprint, kind, t) for t in texts for kind in kinds])

    def _encode(self, texts: Sequence[str], kind: TextKind) -> Vectors:
        keys = [EmbeddingCache.key(self._fingerprint, kind, t) for t in texts]
        found = self.cache.get_many(keys)
        missing = sorted({i for i, k in enumerate(keys) if k not in found})
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if missing:
            unique: dict[bytes, int] = {}
            for i in missing:
                unique.setdefault(keys[i], i)
            encode = self.inner.encode_queries if kind == "query" else self.inner.encode_documents
            fresh = encode([texts[i] for i in unique.values()])
            self.misses += len(unique)
            self.cache.put_many([(k, v.tobytes()) for k, v in zip(unique, fresh, strict=True)])
            found.update({k: v.tobytes() for k, v in zip(unique, fresh, strict=True)})
        for i, key in enumerate(keys):
            out[i] = np.frombuffer(found[key], dtype=np.float32)
        return out
