"""configure_json_logging: every logger, ours and the libraries', as one JSON object per line."""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from service.logs import configure_json_logging


def _all_loggers() -> list[logging.Logger]:
    named = logging.Logger.manager.loggerDict.values()
    return [logging.getLogger(), *(each for each in named if isinstance(each, logging.Logger))]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Puts back every logger's handlers, level and propagation, the warnings hook and the
    environment variable the function sets."""
    mlflow_switch = os.environ.get("MLFLOW_CONFIGURE_LOGGING")
    saved = {logger: (list(logger.handlers), logger.level, logger.propagate) for logger in _all_loggers()}
    showwarning = warnings.showwarning
    yield
    if mlflow_switch is None:
        os.environ.pop("MLFLOW_CONFIGURE_LOGGING", None)
    else:
        os.environ["MLFLOW_CONFIGURE_LOGGING"] = mlflow_switch
    logging.captureWarnings(False)
    warnings.showwarning = showwarning
    for logger in _all_loggers():
        # a logger the test made goes back to a new logger's state
        handlers, level, propagate = saved.get(logger, ([], logging.NOTSET, True))
        logger.handlers = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    """Every line parsed on its own: a line that is not one JSON object fails here."""
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert all(isinstance(entry, dict) for entry in entries)
    return entries


def _has_own_handler(name: str) -> logging.Logger:
    """A logger configured the way uvicorn's dictConfig or alembic's fileConfig leave theirs."""
    logger = logging.getLogger(name)
    logger.handlers = [logging.StreamHandler(io.StringIO())]
    logger.propagate = False
    return logger


def test_uvicorn_alembic_ml_and_warnings_all_come_out_as_json_lines(stream: io.StringIO) -> None:
    _has_own_handler("uvicorn")
    _has_own_handler("alembic")
    configure_json_logging(stream=stream)

    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("alembic.runtime.migration").warning("Running upgrade -> 0001")
    logging.getLogger("ml.something").info("index built: %d cases", 12)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library's warning", UserWarning, stacklevel=1)

    entries = _lines(stream)
    assert [(e["level"], e["logger"]) for e in entries] == [
        ("INFO", "uvicorn.error"),
        ("WARNING", "alembic.runtime.migration"),
        ("INFO", "ml.something"),
        ("WARNING", "py.warnings"),
    ]
    assert entries[0]["message"] == "Started server process [42]"
    assert entries[2]["message"] == "index built: 12 cases"
    assert "UserWarning: a library's warning" in str(entries[3]["message"])
    for entry in entries:
        time = datetime.fromisoformat(str(entry["time"]))
        assert time.utcoffset() == timedelta(0)
        assert abs(datetime.now(time.tzinfo) - time) < timedelta(minutes=1)


def test_a_second_call_does_not_duplicate_lines(stream: io.StringIO) -> None:
    configure_json_logging(stream=stream)
    configure_json_logging(stream=stream)
    logging.getLogger("service.runtime").info("once")
    assert [e["message"] for e in _lines(stream)] == ["once"]
    assert len(logging.getLogger().handlers) == 1


def test_a_later_call_catches_handlers_added_in_between(stream: io.StringIO) -> None:
    configure_json_logging(stream=stream)
    _has_own_handler("spacy")  # as `import spacy` does after the first call
    configure_json_logging(stream=stream)
    logging.getLogger("spacy").warning("W001")
    assert [e["logger"] for e in _lines(stream)] == ["spacy"]


def test_an_exception_carries_an_error_field(stream: io.StringIO) -> None:
    configure_json_logging(stream=stream)
    try:
        raise KeyError("c-42")
    except KeyError:
        logging.getLogger("service.app").exception("request failed")
    (entry,) = _lines(stream)
    assert entry["level"] == "ERROR"
    assert entry["message"] == "request failed"
    assert "KeyError: 'c-42'" in str(entry["error"])


def test_request_fields_pass_through(stream: io.StringIO) -> None:
    configure_json_logging(stream=stream)
    logging.getLogger("casematch.access").info("request", extra={"request_id": "r1", "status": 200})
    (entry,) = _lines(stream)
    assert (entry["request_id"], entry["status"]) == ("r1", 200)


def test_noisy_libraries_speak_only_with_verbose(stream: io.StringIO) -> None:
    configure_json_logging(stream=stream)
    logging.getLogger("faiss.loader").info("Loading faiss with AVX2 support.")
    logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables...")
    logging.getLogger("service.store").debug("not without verbose either")
    assert _lines(stream) == []

    _has_own_handler("decision_process").setLevel(logging.INFO)  # as `import presidio_analyzer` does
    configure_json_logging(verbose=True, stream=stream)
    logging.getLogger("faiss.loader").info("Loading faiss with AVX2 support.")
    logging.getLogger("service.store").debug("now it shows")
    logging.getLogger("decision_process").info("[r1][the analysed text]")  # case text: never
    assert [e["logger"] for e in _lines(stream)] == ["faiss.loader", "service.store"]


def test_deliberately_silenced_loggers_stay_silent(stream: io.StringIO) -> None:
    # uvicorn's access_log=False: no handlers, propagate=False
    silenced = logging.getLogger("uvicorn.access")
    silenced.handlers = []
    silenced.propagate = False
    configure_json_logging(stream=stream)
    silenced.info('127.0.0.1 - "GET /healthz" 200')
    assert _lines(stream) == []
