"""De-identify many posts at once: spread over worker processes, remembered across runs.

De-identification is the slow part of loading a world (milliseconds a post), and the same posts
are cleaned by training and by seeding the store: `DeidentifiedCache` keeps each cleaned post by
a hash of (de-identifier fingerprint, language, title, body), so the second pass costs nothing.
It holds de-identified text only, as the store does.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ml.progress import NoProgress, Progress

Deidentify = Callable[[str, str], str]  # (text, language) -> text with identifiers replaced
Post = tuple[str, str, str]  # title, body, language
CHUNK = 200  # posts per task: big enough to amortise the hand-over, small enough for a live progress bar

_worker_deidentifier: Deidentify | None = None


class DeidentifiedCache:
    """Cleaned (title, body) by post hash, in a SQLite file; one de-identifier fingerprint per key."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._fingerprint = fingerprint
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS posts"
                " (key BLOB PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL)"
            )
            self._db.commit()

    def key(self, post: Post) -> bytes:
        return hashlib.sha256("\0".join((self._fingerprint, post[2], post[0], post[1])).encode()).digest()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, tuple[str, str]]:
        found: dict[bytes, tuple[str, str]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                batch = list(keys[start : start + 500])
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(f"SELECT key, title, body FROM posts WHERE key IN ({marks})", batch)
                found.update((key, (title, body)) for key, title, body in rows)
        return found

    def put_many(self, items: Sequence[tuple[bytes, tuple[str, str]]]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO posts (key, title, body) VALUES (?, ?, ?)",
                [(key, title, body) for key, (title, body) in items],
            )
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def deidentify_posts(
    posts: Sequence[Post],
    deidentify: Deidentify | None = None,
    progress: Progress | None = None,
    *,
    workers: int = 0,
    cache: DeidentifiedCache | None = None,
) -> list[tuple[str, str]]:
    """(title, body) of each post with identifiers replaced, in the posts' order.

    `deidentify` defaults to the real de-identifier in `workers` processes (0 = one per core).
    """
    progress = progress or NoProgress()
    progress.stage("de-identifying posts", len(posts))
    keys = [cache.key(p) for p in posts] if cache else []
    known = cache.get_many(keys) if cache else {}
    todo = [i for i in range(len(posts)) if not cache or keys[i] not in known]
    progress.advance(len(posts) - len(todo))
    cleaned = _clean([posts[i] for i in todo], deidentify, progress, workers or os.cpu_count() or 1)
    if cache:
        cache.put_many([(keys[i], result) for i, result in zip(todo, cleaned, strict=True)])
        known.update((keys[i], result) for i, result in zip(todo, cleaned, strict=True))
        return [known[k] for k in keys]
    return cleaned


def _clean(
    posts: Sequence[Post], deidentify: Deidentify | None, progress: Progress, workers: int
) -> list[tuple[str, str]]:
    chunks = [list(posts[start : start + CHUNK]) for start in range(0, len(posts), CHUNK)]
    if deidentify is not None or workers == 1 or len(chunks) <= 1:
        clean = deidentify or real_deidentifier()
        out: list[tuple[str, str]] = []
        for chunk in chunks:
            out.extend((clean(title, language), clean(body, language)) for title, body, language in chunk)
            progress.advance(len(chunk))
        return out
    results: list[tuple[str, str]] = []
    with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker) as pool:
        for done in pool.map(_deidentify_chunk, chunks):  # map keeps the posts' order
            results.extend(done)
            progress.advance(len(done))
    return results


def packaged_fingerprint() -> str:
    """What the packaged de-identifier's output depends on: its NER models and its rules' code."""
    from ml.privacy.engine import model_dirs
    from ml.privacy.ner import model_fingerprint

    digest = hashlib.sha256()
    for language, path in sorted(model_dirs(None).items()):
        digest.update(f"{language}:{model_fingerprint(path)}\n".encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def real_deidentifier() -> Deidentify:
    from ml.privacy.deid import Deidentifier

    engine = Deidentifier()
    return lambda text, language: engine.deidentify(text, language).text


def _start_worker() -> None:
    global _worker_deidentifier
    _worker_deidentifier = real_deidentifier()


def _deidentify_chunk(chunk: list[Post]) -> list[tuple[str, str]]:
    assert _worker_deidentifier is not None, "worker started without its de-identifier"
    clean = _worker_deidentifier
    return [(clean(title, language), clean(body, language)) for title, body, language in chunk]
