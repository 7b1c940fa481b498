"""The most recent log lines of this process, kept in memory for ``GET /ollama_logs``.

``RecentLogHandler`` formats each record it receives and appends its lines to one ring buffer per
process, ``recent_lines``; every instance of the handler shares it (logging's dictConfig makes one
per configuration: Django's LOGGING for the root logger, ``uvicorn_log_config()`` for uvicorn's own
loggers, which do not propagate). With several workers, each process has its own buffer.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from typing import Any

from uvicorn.config import LOGGING_CONFIG as UVICORN_LOGGING_CONFIG

from llm_gateway.log_redaction import SecretRedactionFilter

CAPACITY = 2000  # lines
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogBuffer:
    """A bounded, thread-safe buffer of log lines: the oldest go first when it is full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lines: deque[str] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def append(self, text: str) -> None:
        """Add a formatted record, one entry per line (a traceback spans several)."""
        with self._lock:
            self._lines.extend(text.splitlines() or [""])

    def tail(self, count: int) -> list[str]:
        """Return the last ``count`` lines, oldest first."""
        with self._lock:
            lines = list(self._lines)
        return lines[-count:] if count > 0 else []

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()


recent_lines = LogBuffer(CAPACITY)


class RecentLogHandler(logging.Handler):
    """Keep every record it handles in ``recent_lines``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            # What logging's own handlers do: a record that cannot be formatted is reported on
            # stderr (logging.raiseExceptions) and must never break the code that logged it.
            self.handleError(record)
            return
        recent_lines.append(text)


def uvicorn_log_config() -> dict[str, Any]:
    """Return uvicorn's default logging config with its loggers also writing to ``recent_lines``.

    Every handler redacts secrets (llm_gateway.log_redaction): the access log prints each request's
    path and query, where a client may have put its key.
    """
    config = copy.deepcopy(UVICORN_LOGGING_CONFIG)
    config["formatters"]["recent"] = {"format": LOG_FORMAT}
    config["handlers"]["recent"] = {"class": f"{__name__}.RecentLogHandler", "formatter": "recent"}
    config.setdefault("filters", {})["redact_secrets"] = {"()": SecretRedactionFilter}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    for name in ("uvicorn", "uvicorn.access"):  # uvicorn.error propagates to uvicorn
        config["loggers"][name]["handlers"].append("recent")
    return config
