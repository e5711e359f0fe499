"""Zero-shot specialty scores: how close a case's embedding is to each specialty's description.

Every one of the 63 codes has an English and a Spanish description of the cases it sees
(`ml/resources/specialty_descriptions.yaml`), so a specialty with few or no training cases
still gets routed, in either language. A code's score is its best cosine over the two texts.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import numpy.typing as npt
import yaml

from ml.embeddings.base import Encoder, Vectors
from ml.taxonomy import load_taxonomy

LANGUAGES = ("en", "es")


def load_descriptions() -> dict[str, dict[str, str]]:
    """{code: {language: description}} for every taxonomy code; a missing one is an error."""
    text = resources.files("ml.resources").joinpath("specialty_descriptions.yaml").read_text("utf-8")
    descriptions: dict[str, dict[str, str]] = yaml.safe_load(text)
    missing = [
        f"{code}/{language}"
        for code in load_taxonomy().codes
        for language in LANGUAGES
        if not descriptions.get(code, {}).get(language)
    ]
    if missing:
        raise ValueError(f"specialty descriptions missing for {', '.join(missing)}")
    return descriptions


class ZeroShotSpecialties:
    """Cosine similarity of case vectors to the specialty descriptions, in taxonomy order."""

    def __init__(self, description_vectors: npt.NDArray[np.float32]) -> None:
        # (languages, 63, dim), unit length: kept as plain arrays so a trained bundle pickles small
        self.description_vectors = description_vectors

    @classmethod
    def embed(cls, encoder: Encoder) -> ZeroShotSpecialties:
        descriptions = load_descriptions()
        codes = load_taxonomy().codes
        vectors = [
            encoder.encode_documents([descriptions[code][language] for code in codes])
            for language in LANGUAGES
        ]
        return cls(np.stack([np.asarray(v, dtype=np.float32) for v in vectors]))

    def similarities(self, vectors: Vectors) -> npt.NDArray[np.float64]:
        """(cases, 63): the best cosine of each case to a code's English or Spanish description."""
        cases = np.asarray(vectors, dtype=np.float32)
        similarities = np.einsum("cd,lsd->lcs", cases, self.description_vectors)
        return np.asarray(np.max(similarities, axis=0), dtype=np.float64)
