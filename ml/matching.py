"""Matcher = encoder + case index: similar cases for a text, in any language."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ml.embeddings.base import Encoder, FingerprintMismatchError
from ml.index.case_index import CaseIndex, Hit, IndexConfig, IndexedCase, Mode
from ml.index.slots import CaseMeta, SearchFilter
from ml.lexicon import BilingualLexicon, load_lexicon


def post_text(title: str, body: str) -> str:
    """The one text a post is matched by: its title, then its body."""
    return f"{title.strip()}. {body.strip()}" if title.strip() else body.strip()


@dataclass(frozen=True, slots=True)
class CaseText:
    case_id: str
    text: str  # title and body, de-identified
    meta: CaseMeta


class Matcher:
    """Encodes posts and searches the index; the lexical query is expanded across languages.

    `lexicon` (default: the bundled one learned from CodiEsp train) adds each query word's
    translation, so a Spanish post's words can match English cases in the lexical channel.
    """

    def __init__(
        self, encoder: Encoder, index: CaseIndex, *, lexicon: BilingualLexicon | None = None
    ) -> None:
        if index.fingerprint != encoder.fingerprint.token:
            raise FingerprintMismatchError(
                expected=index.fingerprint, actual=encoder.fingerprint.token, what="the case index"
            )
        self.encoder = encoder
        self.index = index
        self.lexicon = lexicon if lexicon is not None else load_lexicon()

    @classmethod
    def empty(
        cls, encoder: Encoder, config: IndexConfig | None = None, *, lexicon: BilingualLexicon | None = None
    ) -> Matcher:
        index = CaseIndex(dim=encoder.dim, fingerprint=encoder.fingerprint.token, config=config)
        return cls(encoder, index, lexicon=lexicon)

    def add(
        self,
        cases: Sequence[CaseText],
        *,
        batch_size: int = 256,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """Encode and upsert cases in batches (memory stays flat on big backfills).

        `on_batch(n)` is told after each batch how many cases it held (for progress bars).
        """
        for start in range(0, len(cases), batch_size):
            batch = cases[start : start + batch_size]
            vectors = self.encoder.encode_documents([c.text for c in batch])
            self.index.upsert(
                [IndexedCase(c.case_id, v, c.text, c.meta) for c, v in zip(batch, vectors, strict=True)]
            )
            if on_batch is not None:
                on_batch(len(batch))

    def remove(self, case_ids: Sequence[str]) -> int:
        return self.index.remove(case_ids)

    def search(
        self,
        text: str,
        *,
        k: int = 5,
        search_filter: SearchFilter | None = None,
        mode: Mode = "hybrid",
        vector: npt.NDArray[np.float32] | None = None,
        language: str | None = None,
        other_languages: int = 0,
    ) -> list[Hit]:
        """The k best cases for `text` (pass its query `vector` when already encoded).

        `language` and `other_languages`: see `CaseIndex.search`.
        """
        if vector is None:
            vector = self.encoder.encode_queries([text])[0]
        lexical_text = self.lexicon.expand(text) if mode != "dense" else text
        return self.index.search(
            vector,
            lexical_text,
            k=k,
            search_filter=search_filter,
            mode=mode,
            language=language,
            other_languages=other_languages,
        )

    def search_with_neighbours(
        self,
        text: str,
        vector: npt.NDArray[np.float32],
        *,
        k: int,
        neighbours: int,
        search_filter: SearchFilter | None = None,
        language: str | None = None,
        other_languages: int = 0,
    ) -> tuple[list[Hit], list[Hit]]:
        """Hybrid `search`, and the `neighbours` nearest cases by meaning alone (one pass)."""
        return self.index.search_with_neighbours(
            vector,
            self.lexicon.expand(text),
            k=k,
            neighbours=neighbours,
            search_filter=search_filter,
            language=language,
            other_languages=other_languages,
        )
