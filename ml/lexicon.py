"""A bilingual word lexicon learned from parallel clinical text, to expand lexical queries.

The lexical channel matches exact terms; a Spanish post shares few of them with an English one.
Each query is therefore expanded with the translations of its words, learned from CodiEsp's
*train* split (Spanish case reports and their English translations): for every word seen in at
least `min_docs` reports (and at most `max_doc_share` of them: function words say nothing), the
other-language word whose document occurrences agree best (Dice coefficient) is its translation,
when the agreement reaches `min_dice`.

The learned table ships as `ml/resources/lexicon_es_en.json` (derived from CodiEsp, CC BY 4.0);
`python -m ml.lexicon` learns it again.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ml.text import fold

_WORD = re.compile(r"[a-z]{3,}")
RESOURCE = "lexicon_es_en.json"


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


@dataclass(frozen=True)
class BilingualLexicon:
    es_to_en: dict[str, str]
    en_to_es: dict[str, str]

    def expand(self, text: str) -> str:
        """`text` followed by the translations (either direction) of the words it contains."""
        translations = []
        for word in words(text):
            translated = self.es_to_en.get(word) or self.en_to_es.get(word)
            if translated and translated != word:
                translations.append(translated)
        return f"{text} {' '.join(translations)}" if translations else text

    @classmethod
    def learn(
        cls,
        spanish: Sequence[str],
        english: Sequence[str],
        *,
        min_docs: int = 3,
        max_doc_share: float = 0.3,
        min_dice: float = 0.5,
    ) -> BilingualLexicon:
        """Learn from aligned documents (`spanish[i]` and `english[i]` say the same thing)."""
        if len(spanish) != len(english):
            raise ValueError(f"{len(spanish)} Spanish documents but {len(english)} English ones")
        es_docs, es_vocab = _incidence([set(words(t)) for t in spanish])
        en_docs, en_vocab = _incidence([set(words(t)) for t in english])
        together = (es_docs.T @ en_docs).tocsr()  # documents holding both words
        limits = _Limits(min_docs, max_doc_share * len(spanish), min_dice)
        return cls(
            es_to_en=_best_matches(together, es_docs, en_docs, es_vocab, en_vocab, limits),
            en_to_es=_best_matches(together.T.tocsr(), en_docs, es_docs, en_vocab, es_vocab, limits),
        )

    def save(self, path: Path) -> None:
        payload = {
            "es_to_en": dict(sorted(self.es_to_en.items())),
            "en_to_es": dict(sorted(self.en_to_es.items())),
        }
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")


@cache
def load_lexicon() -> BilingualLexicon:
    """The bundled lexicon (learned from CodiEsp train)."""
    payload = json.loads(resources.files("ml.resources").joinpath(RESOURCE).read_text(encoding="utf-8"))
    return BilingualLexicon(es_to_en=payload["es_to_en"], en_to_es=payload["en_to_es"])


def _incidence(documents: list[set[str]]) -> tuple[sp.csr_matrix, list[str]]:
    vocabulary = sorted(set().union(*documents))
    column = {w: i for i, w in enumerate(vocabulary)}
    rows = [i for i, doc in enumerate(documents) for _ in doc]
    cols = [column[w] for doc in documents for w in doc]
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(documents), len(vocabulary))
    )
    return matrix, vocabulary


@dataclass(frozen=True)
class _Limits:
    min_docs: int
    max_docs: float
    min_dice: float


def _best_matches(
    together: sp.csr_matrix,
    source_docs: sp.csr_matrix,
    target_docs: sp.csr_matrix,
    source_vocab: list[str],
    target_vocab: list[str],
    limits: _Limits,
) -> dict[str, str]:
    source_df = np.asarray(source_docs.sum(axis=0)).ravel()
    target_df = np.asarray(target_docs.sum(axis=0)).ravel()
    table = {}
    for i, word in enumerate(source_vocab):
        start, end = together.indptr[i], together.indptr[i + 1]
        if not limits.min_docs <= source_df[i] <= limits.max_docs or start == end:
            continue
        candidates = together.indices[start:end]
        dice = 2 * together.data[start:end] / (source_df[i] + target_df[candidates])
        dice[target_df[candidates] > limits.max_docs] = 0.0
        best = int(np.argmax(dice))
        if dice[best] >= limits.min_dice:
            table[word] = target_vocab[candidates[best]]
    return table


def main(argv: Sequence[str]) -> int:
    from ml.evaluation.corpora import load_codiesp

    out = Path(argv[0]) if argv else Path(str(resources.files("ml.resources").joinpath(RESOURCE)))
    train = load_codiesp("train")  # never dev or test
    lexicon = BilingualLexicon.learn([d.spanish for d in train], [d.english for d in train])
    lexicon.save(out)
    entries = f"{len(lexicon.es_to_en)} es->en and {len(lexicon.en_to_es)} en->es entries"
    print(f"{entries} from {len(train)} reports -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
