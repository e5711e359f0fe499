"""The real multilingual encoder (USE) with the real index: cross-lingual matching works."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.embeddings import FingerprintMismatchError, load_encoder
from ml.embeddings.base import Encoder
from ml.index import CaseIndex, CaseMeta, SearchFilter
from ml.matching import CaseText, Matcher, post_text
from ml.paths import SAMPLE_WORLD_DIR
from ml.synthetic.world import read_table

PLASTIC_BRONCHITIS_EN = CaseText(
    "report-pb",
    "Plastic bronchitis after Fontan. An 8-year-old boy with hypoplastic left heart syndrome palliated "
    "with a Fontan procedure presented with cough and recurrent expectoration of thick, rubbery, "
    "branching casts of the airways. Bronchoscopy removed further casts; histology showed fibrin "
    "without eosinophils. Treated with inhaled tissue plasminogen activator and lymphatic imaging.",
    CaseMeta(resolved=True, language="en", specialties=("pediatric_pulmonology",)),
)
SPANISH_POST = (
    "Niño de 9 años operado de Fontan que tose y expulsa unos moldes gomosos, ramificados, como "
    "ramitas de árbol. Satura 85%. ¿Alguien ha visto algo así?"
)


@pytest.fixture(scope="module")
def use_encoder() -> Encoder:
    return load_encoder("use", threads=1)


@pytest.fixture(scope="module")
def english_sample() -> list[CaseText]:
    """English cases of the committed sample (none of them plastic bronchitis) as distractors."""
    labels = {
        r["case_id"]: r["condition_id"] for r in read_table(SAMPLE_WORLD_DIR, "case_labels").to_pylist()
    }
    return [
        CaseText(c["case_id"], post_text(c["title"], c["body"]), CaseMeta(True, "en"))
        for c in read_table(SAMPLE_WORLD_DIR, "cases").to_pylist()
        if c["language"] == "en" and labels[c["case_id"]] != "plastic_bronchitis_fontan"
    ][:250]


@pytest.fixture(scope="module")
def matcher(use_encoder: Encoder, english_sample: list[CaseText]) -> Matcher:
    matcher = Matcher.empty(use_encoder)
    matcher.add([PLASTIC_BRONCHITIS_EN, *english_sample])
    return matcher


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_spanish_post_finds_the_english_plastic_bronchitis_report(matcher: Matcher, mode: str) -> None:
    hits = matcher.search(SPANISH_POST, k=3, mode=mode)  # type: ignore[arg-type]
    assert hits[0].case_id == "report-pb", [h.case_id for h in hits]


def test_the_real_encoder_is_normalised_and_fingerprinted(use_encoder: Encoder) -> None:
    vectors = use_encoder.encode_documents(["fiebre y tos", "fever and cough", "fractured wrist"])
    assert vectors.shape == (3, 512)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    token = use_encoder.fingerprint.token
    assert token.startswith("use/") and "/512/" in token


def test_an_index_saved_with_use_reloads_and_refuses_other_encoders(matcher: Matcher, tmp_path: Path) -> None:
    matcher.index.save(tmp_path / "index")
    reloaded = Matcher(
        matcher.encoder,
        CaseIndex.load(tmp_path / "index", expected_fingerprint=matcher.encoder.fingerprint.token),
    )
    assert reloaded.search(SPANISH_POST, k=1)[0].case_id == "report-pb"
    chunked = load_encoder("use?chunk_words=64", threads=1)
    with pytest.raises(FingerprintMismatchError):
        CaseIndex.load(tmp_path / "index", expected_fingerprint=chunked.fingerprint.token)


def test_resolved_only_filter_hides_the_unresolved_report(use_encoder: Encoder) -> None:
    matcher = Matcher.empty(use_encoder)
    unresolved = CaseText(PLASTIC_BRONCHITIS_EN.case_id, PLASTIC_BRONCHITIS_EN.text, CaseMeta(False, "en"))
    matcher.add([unresolved])
    resolved_only = SearchFilter(resolved_only=True)

    def found(search_filter: SearchFilter | None = None) -> list[str]:
        return [h.case_id for h in matcher.search(SPANISH_POST, k=1, search_filter=search_filter)]

    assert found(resolved_only) == []
    # the same search finds it without the filter, and with it once the report is resolved
    assert found() == ["report-pb"]
    assert matcher.index.update_meta(unresolved.case_id, PLASTIC_BRONCHITIS_EN.meta)
    assert found(resolved_only) == ["report-pb"]
