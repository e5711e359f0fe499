"""Test doubles that behave exactly as specified, so expected neighbours are known."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ml.embeddings.base import EncoderFingerprint, Vectors, l2_normalise
from ml.text import fold


class KeywordEncoder:
    """Maps each concept's keywords (in any language) to one axis; a text is the sum of its concepts."""

    def __init__(self, concepts: Mapping[str, Sequence[str]]) -> None:
        self.concepts = list(concepts)
        self.keywords = {name: [fold(k) for k in words] for name, words in concepts.items()}
        self.calls = 0

    @property
    def dim(self) -> int:
        return len(self.concepts) + 1  # the last axis keeps concept-free texts non-zero

    @property
    def name(self) -> str:
        return "keyword"

    @property
    def fingerprint(self) -> EncoderFingerprint:
        return EncoderFingerprint("keyword", "1", "0" * 64, self.dim, "backend")

    def encode_queries(self, texts: Sequence[str]) -> Vectors:
        return self.encode_documents(texts)

    def encode_documents(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            folded = fold(text)
            for j, name in enumerate(self.concepts):
                out[i, j] = sum(folded.count(k) for k in self.keywords[name])
            out[i, -1] = 0.1
        return l2_normalise(out)
