import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import scipy.sparse as sp

from ml.embeddings import FingerprintMismatchError
from ml.hashing import sha256_file
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
from ml.index.lexical import LexicalChannel, LexicalConfig
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
    assert index.wait_for_rebuild(timeout=60)  # the switch to HNSW runs on a thread of its own
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
    index.remove([f"c{i}" for i in range(150)])  # > 25% tombstones: compacts by itself...
    assert index.wait_for_rebuild(timeout=60)  # ...in the background
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

    channel = LexicalChannel(LexicalConfig(segment_rows=5))
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
    channel = LexicalChannel(LexicalConfig(min_language_cases=5, segment_rows=30))
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


# --- scaling: segments, rebuilds off the write lock, erasure, old snapshots ----------------------

WORDS = ("fever", "cough", "rash", "pain", "chest", "knee", "head", "ache", "blood", "sore", "ear", "leg")


def _cases(n: int, *, seed: int, prefix: str = "c") -> list[IndexedCase]:
    """Cases whose texts all hold six words (some repeated), so every row has the same length and
    BM25's length normalisation cannot depend on the order the rows arrived in."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    return [
        IndexedCase(
            f"{prefix}{i}",
            vectors[i],
            " ".join(rng.choice(WORDS, size=6)),
            CaseMeta(resolved=bool(i % 3), language="es" if i % 4 == 0 else "en"),
        )
        for i in range(n)
    ]


def _small_index(**lexical: object) -> CaseIndex:
    return CaseIndex(
        dim=16,
        fingerprint="test",
        config=IndexConfig(
            dense=DenseConfig(hnsw_above=10**9),
            lexical=LexicalConfig(**{"segment_rows": 16, "min_language_cases": 5, **lexical}),  # type: ignore[arg-type]
        ),
    )


def _answers(
    index: CaseIndex, queries: list[IndexedCase]
) -> list[list[tuple[str, float, float | None, float | None]]]:
    return [
        [
            (h.case_id, h.score, h.dense_score, h.lexical_score)
            for h in index.search(q.vector, q.text, k=10, mode=mode)
        ]
        for q in queries
        for mode in get_args(Mode)
    ]


def test_upserts_one_at_a_time_give_the_results_of_one_bulk_build() -> None:
    cases = _cases(300, seed=0)
    queries = _cases(12, seed=1, prefix="q")
    bulk = _small_index()
    bulk.upsert(cases)
    one_by_one = _small_index()
    sizes = np.random.default_rng(2).choice([1, 1, 1, 2, 5, 13], size=300)
    start = 0
    for size in sizes:  # many small segments, merged as they come (a row moves up to log2(16) times)
        one_by_one.upsert(cases[start : start + int(size)])
        start += int(size)
        if start >= len(cases):
            break
    assert len(one_by_one._lexical.segments) > 5, "the small segments merged into a few"
    assert _answers(one_by_one, queries) == _answers(bulk, queries)  # scores bit for bit

    # Replacements and removals, then a compaction: the results of a bulk build of what is left.
    replacements = _cases(40, seed=3)
    one_by_one.upsert(replacements[:20])
    one_by_one.remove([f"c{i}" for i in range(100, 130)])
    one_by_one.upsert(replacements[20:])
    one_by_one.compact()
    assert one_by_one.stats()["tombstones"] == 0
    left = [
        c
        for c in cases
        if not (c.case_id in {r.case_id for r in replacements} or 100 <= int(c.case_id[1:]) < 130)
    ]
    rebuilt = _small_index()
    rebuilt.upsert(
        left + replacements[:20] + [r for r in replacements[20:] if not 100 <= int(r.case_id[1:]) < 130]
    )
    assert _answers(one_by_one, queries) == _answers(rebuilt, queries)


def test_a_search_during_a_rebuild_gets_the_answer_before_or_after_it() -> None:
    cases = _cases(3000, seed=4)
    queries = _cases(5, seed=5, prefix="q")

    def index_with_tombstones() -> CaseIndex:
        index = CaseIndex(
            dim=16,
            fingerprint="test",
            config=IndexConfig(
                dense=DenseConfig(hnsw_above=10**9),
                lexical=LexicalConfig(segment_rows=512, min_language_cases=5),
                rebuild_step_seconds=1e-4,  # the smallest steps: many chances to search between them
            ),
        )
        index.upsert(cases)
        index.remove([f"c{i}" for i in range(0, 3000, 7)])  # under compact_ratio: no rebuild yet
        return index

    index = index_with_tombstones()
    before = _answers(index, queries)
    reference = index_with_tombstones()
    reference.compact()
    after = _answers(reference, queries)
    assert before != after  # the document count changes the BM25 weights: the two are told apart

    # Step by step: between any two steps a search gets the old answer, and the new one after.
    with index._gate.writer():
        rebuild = index._start_rebuild()
    steps = 0
    while index.stats()["rebuilding"]:
        assert _answers(index, queries) == before
        with index._gate.writer():
            if rebuild.step(index):
                index._finish(rebuild)
        steps += 1
    assert steps > 10 and _answers(index, queries) == after

    # On threads, with writes of neither kind: every single search gets one or the other.
    index = index_with_tombstones()
    errors: list[BaseException] = []

    def compact() -> None:
        try:
            index.compact()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=compact)
    thread.start()
    while thread.is_alive():
        for i, answer in enumerate(_answers(index, queries)):  # one search each
            assert answer in (before[i], after[i]), "a search during the rebuild got a mixture of the two"
    thread.join()
    assert not errors, errors[0]
    assert _answers(index, queries) == after


def test_a_rebuild_on_its_own_thread_lets_writes_and_searches_through() -> None:
    index = _small_index(segment_rows=256)
    cases = _cases(2000, seed=6)
    index.upsert(cases)
    index.config = replace(index.config, rebuild_step_seconds=1e-4)
    index._dense.config = replace(index._dense.config, hnsw_above=1000)  # due for the switch to HNSW
    index.upsert(_cases(1, seed=7, prefix="n"))  # starts it, in the background
    assert index.stats()["rebuilding"]
    writes = _cases(50, seed=8, prefix="w")
    for case in writes:  # go to the live channels, and are copied before the swap
        index.upsert([case])
        assert index.search(case.vector, "", k=1, mode="dense")[0].case_id == case.case_id
    index.remove(["c5", "w3"])
    assert index.wait_for_rebuild(timeout=120)
    assert index.kind == "hnsw" and len(index) == 2000 + 1 + 50 - 2
    for case in writes:
        found = {h.case_id for h in index.search(case.vector, case.text, k=10)}
        assert (case.case_id in found) == (case.case_id != "w3")
    assert "c5" not in {h.case_id for h in index.search(cases[5].vector, cases[5].text, k=10)}


def _stored(index: CaseIndex, slot: int) -> np.ndarray:
    return np.asarray(index._dense.index.reconstruct(slot))


def _lexical_entries(channel: LexicalChannel, slot: int) -> int:
    return sum(len(positions) for _, positions in channel.locate([slot]))


def test_removed_cases_are_overwritten_at_once_also_in_a_rebuilds_copies(tmp_path: Path) -> None:
    index = _small_index(segment_rows=64)
    cases = _cases(400, seed=9)
    index.upsert(cases)
    slot = index._slots.slot_of["c10"]
    assert _stored(index, slot).any() and _lexical_entries(index._lexical, slot) > 0
    index.remove(["c10"])
    assert not _stored(index, slot).any(), "the vector is zero as soon as remove returns"
    assert _lexical_entries(index._lexical, slot) == 0, "and no lexical entry points at its row"

    # Removed while a rebuild copies: c20's lexical row is copied, c70's is half copied (what is
    # still to come leaves it out), then c30's vector is copied: every copy is overwritten too.
    with index._gate.writer():
        rebuild = index._start_rebuild()
        new20, new30, new70 = rebuild.new_slots(
            [index._slots.slot_of[c] for c in ("c20", "c30", "c70")]
        ).tolist()
        while True:  # until part of c70's row is copied, but not all of its segment
            rebuild.entries = 64  # lexical entries per step: a segment takes many steps
            rebuild.step(index)
            assert rebuild.lexical_done <= new70, "c70's segment was copied in one step"
            copy = rebuild.copy
            within = copy is not None and new70 < rebuild.lexical_done + copy.rows
            if within and any((part == new70 - rebuild.lexical_done).any() for part in copy._row_ids):
                break
    assert _lexical_entries(rebuild.lexical, new20) > 0
    index.remove(["c20", "c70"])
    assert _lexical_entries(rebuild.lexical, new20) == 0
    assert not any((part == new70 - rebuild.lexical_done).any() for part in rebuild.copy._row_ids)
    with index._gate.writer():
        while rebuild.dense_done <= new30:
            rebuild.step(index)
    assert _stored_in(rebuild.dense, new30).any()
    index.remove(["c30"])
    assert not _stored_in(rebuild.dense, new30).any()
    index.compact()
    assert "c20" not in index and "c70" not in index
    left = _small_index(segment_rows=64)
    left.upsert([c for c in cases if c.case_id not in {"c10", "c20", "c30", "c70"}])
    for counts in ("df", "language_df", "language_docs"):  # the copies' frequencies followed
        np.testing.assert_array_equal(getattr(index._lexical, counts), getattr(left._lexical, counts))

    index.remove(["c40"])
    index.save(tmp_path / "index")
    with np.load(tmp_path / "index" / "lexical.npz") as saved:
        assert len(saved["row_ids"]) == sum(
            segment.nnz - segment.dead for segment in index._lexical.segments
        ), "the snapshot holds no entry of an erased row"
    loaded = CaseIndex.load(tmp_path / "index", expected_fingerprint="test")
    assert not _stored(loaded, index._slots.case_ids.index("c40")).any()


def _stored_in(dense: object, slot: int) -> np.ndarray:
    return np.asarray(dense.index.reconstruct(slot))  # type: ignore[attr-defined]


def _save_as_format_2(index: CaseIndex, folder: Path, erased_lengths: dict[int, float]) -> None:
    """Rewrite a saved index's lexical file as format 2 wrote it: one CSC matrix of BM25 weights
    (what the code before segments saved; checked against it when this test was written)."""
    channel = index._lexical
    rows, columns, weights = [], [], []
    k = np.float32(channel.config.k1 + 1)
    for segment in channel.segments:
        more = np.diff(segment.xptr)
        counts = np.ones(segment.nnz, dtype=np.float32)
        tails = np.repeat(segment.colptr[1:] - more, more)
        counts[tails + np.arange(len(segment.extra)) - np.repeat(segment.xptr[:-1], more)] = segment.extra
        local = segment.row_ids.astype(np.int64)
        live = local < segment.rows
        weight = counts * k / (counts + segment.norm[local])
        rows.append(local[live] + segment.start)
        columns.append(np.repeat(segment.features, np.diff(segment.colptr))[live])
        weights.append(weight[live])
    shape = (len(channel), channel.config.n_features)
    matrix = sp.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(columns))), shape=shape
    )
    lengths = channel._lengths.values.copy()
    for slot, length in erased_lengths.items():
        lengths[slot] = length  # format 2 kept erased rows' lengths
    languages = channel._languages.values.copy()
    np.savez(
        folder / "lexical.npz",
        data=matrix.tocsc().data,
        indices=matrix.tocsc().indices,
        indptr=matrix.tocsc().indptr,
        shape=np.array(shape),
        df=channel.df,
        lengths=lengths,
        languages=np.where(languages < 0, 0, languages).astype(np.int8),
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["format"] = 2
    manifest["sha256"]["lexical.npz"] = sha256_file(folder / "lexical.npz")
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_format_2_snapshot_loads_with_the_same_results(tmp_path: Path) -> None:
    index = _small_index(segment_rows=64)
    cases = _cases(500, seed=10)
    index.upsert(cases[:200])
    index.upsert(cases[200:])  # rows of two arrival averages
    index.upsert(
        [IndexedCase("long", cases[0].vector, "fever fever fever cough rash pain pain knee", CaseMeta())]
    )
    erased = {index._slots.slot_of[c]: 6.0 for c in ("c3", "c250")}
    index.remove(["c3", "c250"])
    queries = _cases(10, seed=11, prefix="q")
    expected = _answers(index, queries)
    index.save(tmp_path / "index")
    _save_as_format_2(index, tmp_path / "index", erased)
    loaded = CaseIndex.load(tmp_path / "index", expected_fingerprint="test", config=index.config)
    assert _answers(loaded, queries) == expected
    np.testing.assert_array_equal(loaded._lexical.language_docs, index._lexical.language_docs)
    np.testing.assert_array_equal(loaded._lexical.df, index._lexical.df)
    loaded.upsert(_cases(5, seed=12, prefix="n"))  # and it goes on taking writes, saved as format 3
    loaded.save(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "manifest.json").read_text())["format"] == 3
    again = CaseIndex.load(tmp_path / "again", expected_fingerprint="test", config=index.config)
    assert _answers(again, queries) == _answers(loaded, queries)


def test_memory_is_counted_without_copying_and_matches_what_a_save_writes() -> None:
    import faiss

    for hnsw_above in (10**9, 100):
        index = CaseIndex(
            dim=16, fingerprint="test", config=IndexConfig(dense=DenseConfig(hnsw_above=hnsw_above))
        )
        index.upsert(_cases(500, seed=13))
        assert index.wait_for_rebuild(timeout=60)
        serialised = len(faiss.serialize_index(index._dense.index))
        assert 0 <= serialised - index._dense.nbytes() < 1024  # FAISS's header only
        parts = index.nbytes_by_part()
        assert parts["lexical"] >= index._lexical.df.nbytes + index._lexical.language_df.nbytes


def test_a_postings_budget_scores_the_rarest_terms_and_changes_nothing_below_it() -> None:
    # 40 notes share everyday words; "fontan" (a word and five 4-grams) is in 2 of them, "casts"
    # in 3: the rare terms' postings are 6 x 2 + 3 = 15, the everyday words' hundreds
    texts = [f"patient admitted with cough fever day {i}" for i in range(35)]
    texts += ["patient admitted fontan cough fever", "fontan patient casts admitted"]
    texts += ["casts cough fever admitted patient"] * 2 + ["patient with fever and cough"]
    query = "patient admitted with cough fever after fontan casts"
    everything = LexicalChannel(LexicalConfig(max_postings=None, max_df_ratio=1.0))
    ample = LexicalChannel(LexicalConfig(max_postings=10_000, max_df_ratio=1.0))
    tight = LexicalChannel(LexicalConfig(max_postings=15, max_df_ratio=1.0))
    for channel in (everything, ample, tight):
        channel.add(texts)
    allowed = np.ones(len(texts), dtype=bool)

    full_scores, full_slots = everything.search(query, allowed, k=len(texts))
    scores, slots = ample.search(query, allowed, k=len(texts))
    np.testing.assert_array_equal(slots, full_slots)
    np.testing.assert_array_equal(scores, full_scores)
    assert len(full_slots) == len(texts), "every note shares a common word with the query"

    _, slots = tight.search(query, allowed, k=len(texts))
    assert sorted(slots.tolist()) == [35, 36, 37, 38], "only the notes with the rare words score"
    assert slots[0] == 36, "the note with both rare words comes first"
