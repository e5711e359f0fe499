"""The answer book: each answer and each acceptance counted once, and saved whole."""

from __future__ import annotations

from pathlib import Path

from ml.routing.answers import AnswerBook


def test_an_answer_and_its_acceptance_count_once_however_often_they_are_seen() -> None:
    book = AnswerBook()
    assert book.add("c1", "d1").new
    assert not book.add("c1", "d1").new
    accepted = book.add("c1", "d1", accepted=True)
    assert not accepted.new and accepted.newly_accepted
    assert not book.add("c1", "d1", accepted=True).newly_accepted
    assert not book.add("c1", "d1").newly_accepted, "an acceptance is never taken back"
    assert book.answerers_of(["c1", "c2"]) == {"c1": ["d1"], "c2": []}


def test_a_saved_book_loads_back_with_every_answer_in_order_and_its_watermark(tmp_path: Path) -> None:
    book = AnswerBook()
    book.add("c1", "d2")
    book.add("c1", "d1", accepted=True)
    book.add("c2", "d2")
    book.add("c3", "d9")
    book.forget("c3")  # erased: not saved
    book.save(tmp_path / "book.npz", watermark=41)

    loaded, watermark = AnswerBook.load(tmp_path / "book.npz")
    assert watermark == 41
    assert loaded.answerers_of(["c1", "c2", "c3"]) == {"c1": ["d2", "d1"], "c2": ["d2"], "c3": []}
    assert len(loaded) == 3
    assert not loaded.add("c1", "d1", accepted=True).newly_accepted, "the acceptance came back too"
    assert loaded.add("c2", "d2", accepted=True).newly_accepted


def test_an_empty_book_saves_and_loads(tmp_path: Path) -> None:
    AnswerBook().save(tmp_path / "book.npz", watermark=0)
    loaded, watermark = AnswerBook.load(tmp_path / "book.npz")
    assert (len(loaded), watermark) == (0, 0)
