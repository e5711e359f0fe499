import json
import threading
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from ml.embeddings import FingerprintMismatchError
from ml.index import (
    CaseIndex,
    CaseMeta,
    DenseConfig,
    IndexConfig,
    IndexCorruptError,
    IndexedCase,
    SearchFilter,
)
from ml.index.case_index import Mode
from ml.matching import CaseText, Matcher
from tests.fakes import KeywordEncoder

CONCEPTS = {
    "casts": ["branching casts", "moldes ramificados", "fontan"],
    "hus": ["bloody diarrhoea", "diarrea con sangre", "schistocytes", "esquistocitos"],
    "chest": ["chest pain", "dolor torácico"],
    "rash": ["rash", "exantema"],
}


@pytest.fixture
def encoder() -> KeywordEncoder:
    return KeywordEncoder(CONCEPTS)


@pytest.fixture
def matcher(encoder: KeywordEncoder) -> Matcher:
    matcher = Matcher.empty(encoder)
    matcher.add(
        [
            CaseText(
                "en-casts",
                "Child after Fontan coughing up branching casts",
                CaseMeta(True, "en", ("pediatric_pulmonology",)),
            ),
            CaseText(
                "en-hus",
                "Bloody diarrhoea then schistocytes and oliguria",
                CaseMeta(True, "en", ("pediatric_nephrology",)),
            ),
            CaseText("en-chest", "Crushing chest pain on exertion", CaseMeta(True, "en", ("cardiology",))),
            CaseText("es-chest", "Dolor torácico opresivo", CaseMeta(False, "es", ("cardiology",))),
            CaseText(
                "es-rash", "Exantema en tronco tras amoxicilina", CaseMeta(True, "es", ("dermatology",))
            ),
        ]
    )
    return matcher


def test_a_spanish_post_finds_the_english_case_of_the_same_concept(matcher: Matcher) -> None:
    hits = matcher.search("Niño operado de Fontan que expectora moldes ramificados", k=1)
    assert hits[0].case_id == "en-casts"
    assert hits[0].dense_score == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_filters_apply_inside_every_channel(matcher: Matcher, mode: Mode) -> None:
    def ids(search_filter: SearchFilter) -> set[str]:
        return {
            h.case_id
            for h in matcher.search("chest pain dolor torácico", k=5, search_filter=search_filter, mode=mode)
        }

    # Unfiltered, the same search finds both chest cases: what a filter leaves out was there to find.
    assert {"es-chest", "en-chest"} <= ids(SearchFilter())
    resolved = ids(SearchFilter(resolved_only=True))
    assert "es-chest" not in resolved and "en-chest" in resolved
    assert "es-chest" in ids(SearchFilter(language="es")) <= {"es-chest", "es-rash"}
    assert ids(SearchFilter(specialties=("cardiology",))) == {"en-chest", "es-chest"}
    excluded = ids(SearchFilter(exclude_ids=("en-chest",)))
    assert "en-chest" not in excluded and "es-chest" in excluded
    assert ids(SearchFilter(language="es", specialties=("pediatric_pulmonology",))) == set()


def test_upsert_replaces_and_remove_erases(matcher: Matcher) -> None:
    # the searches below find the cases before the change, so their absence after it means something
    old_text = matcher.search("crushing exertion", k=5, mode="lexical")
    assert old_text[0].case_id == "en-chest"
    for mode in get_args(Mode):
        assert matcher.search("fontan branching casts", k=5, mode=mode)[0].case_id == "en-casts"

    matcher.add([CaseText("en-chest", "Now a rash on the legs", CaseMeta(True, "en", ("dermatology",)))])
    assert len(matcher.index) == 5
    old_words = matcher.search("crushing exertion", k=5, mode="lexical")
    assert "en-chest" not in [h.case_id for h in old_words], "the replaced text must not match any more"
    assert matcher.search("rash", k=1, search_filter=SearchFilter(language="en"))[0].case_id == "en-chest"

    assert matcher.remove(["en-casts", "missing"]) == 1
    for mode in get_args(Mode):
        assert "en-casts" not in {h.case_id for h in matcher.search("fontan branching casts", k=5, mode=mode)}
    assert "en-casts" not in matcher.index


def test_metadata_updates_without_reindexing(matcher: Matcher) -> None:
    only_resolved = SearchFilter(resolved_only=True, language="es")
    assert "es-chest" not in {
        h.case_id for h in matcher.search("dolor torácico", k=5, search_filter=only_resolved)
    }
    assert matcher.index.update_meta("es-chest", CaseMeta(True, "es", ("cardiology",)))
    assert matcher.search("dolor torácico", k=1, search_filter=only_resolved)[0].case_id == "es-chest"
    assert not matcher.index.update_meta("nope", CaseMeta())


def _random_index(n: int, *, hnsw_above: int, seed: int = 0) -> tuple[CaseIndex, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 32)).astype(np.float32)
    index = CaseIndex(
        dim=32,
        fingerprint="test",
        config=IndexConfig(dense=DenseConfig(hnsw_above=hnsw_above, exact_below_allowed=16)),
    )
    index.upsert(
        [
            IndexedCase(f"c{i}", vectors[i], f"case {i}", CaseMeta(resolved=i % 2 == 0, language="en"))
            for i in range(n)
        ]
    )
    return index, vectors


def test_hnsw_agrees_with_exact_search_up_to_ties() -> None:
    exact, vectors = _random_index(3000, hnsw_above=10**9)
    approx, _ = _random_index(3000, hnsw_above=1000)
    assert exact.kind == "flat" and approx.kind == "hnsw"
    rng = np.random.default_rng(1)
    recalls = []
    for query in rng.normal(size=(50, 32)).astype(np.float32):
        truth = exact.search(query, "", k=10, mode="dense")
        found = approx.search(query, "", k=10, mode="dense")
        tenth = truth[-1].score - 1e-5  # anything scoring as high as the 10th exact hit is a correct answer
        recalls.append(sum(h.score >= tenth for h in found) / 10)
    assert np.mean(recalls) >= 0.95
    # A selective filter is served exactly from the subset, even on HNSW.
    selective = SearchFilter(exclude_ids=tuple(f"c{i}" for i in range(2990)))
    assert {
        h.case_id for h in approx.search(vectors[0], "", k=10, mode="dense", search_filter=selective)
    } == {f"c{i}" for i in range(2990, 3000)}


@pytest.mark.parametrize("hnsw_above", [1000, 50])
def test_stored_vectors_come_back_by_id_and_removed_cases_are_gone(hnsw_above: int) -> None:
    index, vectors = _random_index(200, hnsw_above=hnsw_above)
    stored = index.vectors(["c3", "c150", "nope"])
    assert sorted(stored) == ["c150", "c3"]
    norms = np.linalg.norm(vectors[[3, 150]], axis=1, keepdims=True)
    np.testing.assert_allclose(np.stack([stored["c3"], stored["c150"]]), vectors[[3, 150]] / norms, atol=1e-5)
    index.remove(["c3"])
    assert index.vectors(["c3"]) == {}


def test_compaction_purges_tombstones_and_keeps_results() -> None:
    index, vectors = _random_index(400, hnsw_above=10**9)
    before = [h.case_id for h in index.search(vectors[399], "", k=5, mode="dense")]
    index.remove([f"c{i}" for i in range(150)])  # > 25% tombstones: compacts by itself
    stats = index.stats()
    assert stats["tombstones"] == 0 and stats["cases"] == 250
    after = [h.case_id for h in index.search(vectors[399], "", k=5, mode="dense")]
    survivors = [c for c in before if int(c[1:]) >= 150]
    assert after[: len(survivors)] == survivors


def test_save_and_load_round_trip(tmp_path: Path, matcher: Matcher, encoder: KeywordEncoder) -> None:
    matcher.index.watermark = {"created_at": "2025-06-01T00:00:00Z"}
    matcher.index.save(tmp_path / "index")
    loaded = CaseIndex.load(tmp_path / "index", expected_fingerprint=encoder.fingerprint.token, mmap=True)
    again = Matcher(encoder, loaded)
    for query in ("moldes ramificados", "dolor torácico", "exantema"):
        assert [h.case_id for h in again.search(query, k=3)] == [
            h.case_id for h in matcher.search(query, k=3)
        ]
    assert loaded.watermark == {"created_at": "2025-06-01T00:00:00Z"}


def test_load_refuses_another_encoders_index(tmp_path: Path, matcher: Matcher) -> None:
    matcher.index.save(tmp_path / "index")
    with pytest.raises(FingerprintMismatchError, match="rebuild it"):
        CaseIndex.load(tmp_path / "index", expected_fingerprint="use/0.2.1/abc/512/backend")
    other = KeywordEncoder({"x": ["x"]})
    with pytest.raises(FingerprintMismatchError):
        Matcher(other, matcher.index)


def test_load_refuses_damaged_files(tmp_path: Path, matcher: Matcher, encoder: KeywordEncoder) -> None:
    folder = tmp_path / "index"
    matcher.index.save(folder)
    data = bytearray((folder / "dense.faiss").read_bytes())
    data[-1] ^= 0xFF
    (folder / "dense.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum"):
        CaseIndex.load(folder, expected_fingerprint=encoder.fingerprint.token)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(manifest | {"format": 99}))
    with pytest.raises(IndexCorruptError, match="format"):
        CaseIndex.load(folder, expected_fingerprint=encoder.fingerprint.token)


def test_searches_during_writes_never_crash_or_return_removed_cases() -> None:
    index, vectors = _random_index(2000, hnsw_above=1500)
    removed: set[str] = set()
    errors: list[BaseException] = []
    searches: list[int] = []
    stop = threading.Event()
    rng = np.random.default_rng(2)

    def searcher() -> None:
        local = np.random.default_rng(threading.get_ident() % 1000)
        try:
            while not stop.is_set():
                gone = set(removed)  # removed before this search started
                hits = index.search(local.normal(size=32).astype(np.float32), "case", k=10)
                # a full page of hits: with up to a third of the cases removed, a search that
                # still returned removed cases would show them here
                assert len(hits) == 10
                assert not {h.case_id for h in hits} & gone
                searches.append(1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    for step in range(60):
        victims = [f"c{i}" for i in rng.choice(2000, size=10, replace=False)]
        index.remove(victims)
        removed.update(victims)
        index.upsert([IndexedCase(f"new{step}-{j}", vectors[j], "case", CaseMeta()) for j in range(5)])
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert searches, "the searchers ran while the writes went on"


def test_lexical_erasure_in_both_segments() -> None:
    from ml.index.lexical import LexicalChannel, LexicalConfig

    channel = LexicalChannel(LexicalConfig(merge_every=5))
    channel.add(["fontan casts", "fontan wheeze", "chest pain", "rash", "cough"])  # merged: large segment
    channel.add(["fontan plastic", "knee pain", "headache"])  # still in the recent segment
    everyone = np.ones(8, dtype=bool)
    assert set(channel.search("fontan", everyone, k=5)[1].tolist()) == {0, 1, 5}
    df_before = channel.df.copy()
    channel.erase([1, 5])
    assert set(channel.search("fontan", everyone, k=5)[1].tolist()) == {0}
    assert (channel.df <= df_before).all() and channel.df.sum() < df_before.sum()
    channel.add(["fontan again"])  # restacking the recent segment must not bring the erased row back
    assert set(channel.search("fontan", np.ones(9, dtype=bool), k=5)[1].tolist()) == {0, 8}


def test_words_common_within_one_language_do_not_outweigh_rare_medical_terms(tmp_path: Path) -> None:
    from ml.index.lexical import LexicalChannel, LexicalConfig

    spanish = [f"paciente {i} comparto estudios pediriais" for i in range(10)]
    english = ["fontan branching casts"] + [f"fontan wheeze {i}" for i in range(3)] + ["knee pain"] * 26
    codes = [1] * len(spanish) + [0] * len(english)
    everyone = np.ones(len(codes), dtype=bool)
    query = "fontan comparto estudios pediriais"
    overall = LexicalChannel(LexicalConfig(min_language_cases=5, per_language_df=False))
    overall.add(spanish + english, codes)
    # Overall, the Spanish post words are as rare as "fontan": a Spanish post full of them wins...
    assert overall.search(query, everyone, k=1)[1][0] < len(spanish)
    np.testing.assert_allclose(overall.document_share(["estudios", "fontan"]), [10 / 40, 4 / 40])

    # ...but every Spanish post holds them: within their language they are common, and say nothing.
    channel = LexicalChannel(LexicalConfig(min_language_cases=5, merge_every=30))
    channel.add(spanish + english[:10], codes[:20])
    channel.add(english[10:20], codes[20:30])  # merged into the large segment
    channel.add(english[20:], codes[30:])  # still in the recent one
    assert channel.search(query, everyone, k=1)[1][0] >= len(spanish)
    np.testing.assert_allclose(channel.document_share(["Estudios", "fontan"]), [1.0, 4 / 30])

    # The counts follow erasures (in both segments), a language change, and a save and load.
    channel.erase([0, 1, 2, 3, 4, 5, 6, 7, 35])  # two Spanish cases left: too few for their own counts
    np.testing.assert_allclose(channel.document_share(["estudios"]), [2 / 40])
    channel.set_language(10, 1)
    channel.save(tmp_path / "lexical.npz")
    loaded = LexicalChannel.load(tmp_path / "lexical.npz", channel.config)
    np.testing.assert_array_equal(loaded.language_docs, channel.language_docs)
    np.testing.assert_array_equal(loaded.language_df, channel.language_df)
    assert loaded.language_docs.tolist() == [28, 3, 0]


def test_results_keep_a_case_in_another_language_when_one_is_a_candidate(matcher: Matcher) -> None:
    post = "Dolor torácico opresivo"

    def ids(**options: object) -> list[str]:
        return [h.case_id for h in matcher.search(post, **options)]  # type: ignore[arg-type]

    assert ids(k=1) == ["es-chest"]
    assert ids(k=1, language="es", other_languages=1) == ["en-chest"]
    assert ids(k=2, language="es", other_languages=1) == ["es-chest", "en-chest"]
    spanish_only = SearchFilter(language="es")  # no other-language candidate: nothing to swap in
    assert ids(k=1, search_filter=spanish_only, language="es", other_languages=1) == ["es-chest"]


def test_one_pass_gives_the_fused_hits_and_the_dense_neighbours(
    matcher: Matcher, encoder: KeywordEncoder
) -> None:
    post = "Niño con Fontan que expulsa moldes ramificados"
    vector = encoder.encode_queries([post])[0]
    hits, nearest = matcher.search_with_neighbours(post, vector, k=2, neighbours=3)
    assert [h.case_id for h in hits] == [h.case_id for h in matcher.search(post, vector=vector, k=2)]
    dense = matcher.search(post, vector=vector, k=3, mode="dense")
    assert nearest[0].case_id == dense[0].case_id == "en-casts"
    assert [h.score for h in nearest] == pytest.approx([h.score for h in dense])  # the rest tie
    none, nearest = matcher.search_with_neighbours(post, vector, k=0, neighbours=3)
    assert none == [] and len(nearest) == 3, "no similar cases asked for: the neighbours still come"
