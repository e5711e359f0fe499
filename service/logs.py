"""One log format for the whole serving process: every logger, ours and the libraries', as JSON lines.

`configure_json_logging()` puts one JSON handler on the root logger and makes every other logger
propagate to it, so uvicorn, alembic, mlflow, torch, `ml.*`, `service.*` and Python warnings all
write the same `{"time", "level", "logger", "message", ...}` objects, one per line.

Only loggers that exist when it runs can be stripped: a library imported later may attach its own
handler at import (spaCy, transformers and torch do). Call it again once the heavy imports are
done (after the runtime has loaded its models); it is idempotent. MLflow is told through its
MLFLOW_CONFIGURE_LOGGING switch to attach none at all, which also holds in child processes.

With uvicorn, pass `log_config=None`: uvicorn then configures no logger of its own, and
"uvicorn", "uvicorn.error" (and "uvicorn.access" unless `access_log=False`) propagate here. A
uvicorn worker process (`workers>1`) is a fresh interpreter that inherits none of this: the app
factory it imports must call `configure_json_logging()` first.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from service.observability import JsonLogFormatter

# INFO chatter, wanted only with --verbose: faiss probing CPU builds, Presidio per analysis,
# urllib3/httpx per HTTP call, alembic's "Context impl SQLiteImpl" and MLflow's store set-up
# each time an MLflow SQL store is opened, huey (MLflow's task queue).
NOISY_LOGGERS = (
    "faiss.loader",
    "presidio-analyzer",
    "urllib3",
    "httpx",
    "alembic",
    "huey",
    "mlflow.store.db.utils",
)
# At WARNING even with --verbose: below it they would log case text (SQL statements with their
# parameters; Presidio's decision trace of the analysed text).
SENSITIVE_LOGGERS = ("sqlalchemy.engine", "decision_process")


def configure_json_logging(*, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Send every logger's records, and Python warnings, to one JSON-lines handler on the root.

    Args:
        verbose: DEBUG on the root and the noisy libraries at their own levels; otherwise INFO,
            and the noisy libraries at WARNING.
        stream: where the lines go; `sys.stderr` as it is at the call when None.
    """
    # Read by `import mlflow`, here or in a child process; a later import must not re-add handlers.
    os.environ["MLFLOW_CONFIGURE_LOGGING"] = "false"
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        # A logger with only NullHandlers and propagate=False was silenced on purpose; leave it.
        if isinstance(logger, logging.Logger) and not all(
            isinstance(own, logging.NullHandler) for own in logger.handlers
        ):
            logger.handlers = []
            logger.propagate = True
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
    for name in SENSITIVE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
