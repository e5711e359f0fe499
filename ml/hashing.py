"""SHA-256 digests of files, read in blocks (model weights and indexes can be large)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    return sha256_files([path], with_names=False)


def sha256_files(paths: Iterable[Path], *, with_names: bool = True) -> str:
    """One digest over several files, in the order given (with their names, unless told not to)."""
    digest = hashlib.sha256()
    for path in paths:
        if with_names:
            digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
    return digest.hexdigest()
