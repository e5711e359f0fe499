"""The real corpora load with their fixed splits (skipped where ../shared/data is absent)."""

from pathlib import Path

import pytest

from ml.evaluation.corpora import SHARED_DATA, CorpusMissingError, load_codiesp, load_mtsamples, load_tico19
from ml.taxonomy import Taxonomy

needs_data = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not next to the project")


@needs_data
def test_splits_are_disjoint_and_sized_as_documented(taxonomy: Taxonomy) -> None:
    mtsamples = {split: load_mtsamples(split) for split in ("train", "dev", "test")}
    assert [len(mtsamples[s]) for s in ("train", "dev", "test")] == [1594, 224, 499]
    ids = [n.doc_id for notes in mtsamples.values() for n in notes]
    assert len(ids) == len(set(ids))
    assert all(code in taxonomy for notes in mtsamples.values() for n in notes for code in n.specialties)
    codiesp_test = load_codiesp("test")
    assert len(codiesp_test) == 747 and all(d.spanish and d.english for d in codiesp_test)
    assert len(load_tico19()) == 3070


def test_missing_data_and_bad_splits_are_explained(tmp_path: Path) -> None:
    with pytest.raises(CorpusMissingError, match="shared/data"):
        load_codiesp("test", data_dir=tmp_path)
    with pytest.raises(ValueError, match="split 'validation'"):
        load_mtsamples("validation")
