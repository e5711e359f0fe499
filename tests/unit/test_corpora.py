"""The vendored real corpora load with their fixed splits, and say clearly when a file is missing."""

from pathlib import Path

import pytest

from ml.evaluation.corpora import (
    CORPORA_DIR,
    CorpusMissingError,
    load_codiesp,
    load_deid_gold,
    load_mtsamples,
    load_tico19,
)
from ml.taxonomy import Taxonomy


def test_splits_are_disjoint_and_sized_as_documented(taxonomy: Taxonomy) -> None:
    mtsamples = {split: load_mtsamples(split) for split in ("train", "dev", "test")}
    assert [len(mtsamples[s]) for s in ("train", "dev", "test")] == [1594, 224, 499]
    ids = [n.doc_id for notes in mtsamples.values() for n in notes]
    assert len(ids) == len(set(ids))
    assert all(code in taxonomy for notes in mtsamples.values() for n in notes for code in n.specialties)
    codiesp_test = load_codiesp("test")
    assert len(codiesp_test) == 747 and all(d.spanish and d.english for d in codiesp_test)
    assert len(load_tico19()) == 3070


def test_deid_gold_spans_point_at_their_text() -> None:
    for corpus, sizes, with_phi in (("meddocan", (500, 250), 750), ("physionet", (858, 227), 354)):
        train, dev = load_deid_gold(corpus, "train"), load_deid_gold(corpus, "dev")
        assert (len(train), len(dev)) == sizes
        assert sum(1 for doc in train + dev if doc.spans) == with_phi
        assert all(0 <= s.start < s.end <= len(d.text) for d in train + dev for s in d.spans)
    with pytest.raises(ValueError, match="split 'test'"):
        load_deid_gold("meddocan", "test")  # held out of the project on purpose


def test_missing_data_and_bad_splits_are_explained(tmp_path: Path) -> None:
    with pytest.raises(CorpusMissingError, match="vendor-corpora"):
        load_codiesp("test", data_dir=tmp_path)
    with pytest.raises(ValueError, match="split 'validation'"):
        load_mtsamples("validation")
    assert CORPORA_DIR.name == "corpora" and (CORPORA_DIR / "README.md").exists()
