"""JSON log lines: one well-formed record per event, whatever the message holds.

``json.dumps(..., ensure_ascii=True)`` escapes CR/LF, ANSI escapes, NUL and quotes, so a record
is always one line of valid JSON. The message is capped (a line stays well under what one
``write`` delivers whole to a shared pipe), and a message whose arguments do not match its
format is still written as one record. Libraries that log statements with their parameters
(the content of entries) at DEBUG are held at WARNING (SECURITY.md item 22).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

MAX_MESSAGE = 1500  # characters; the path in the access log is already cut at 300

# They log SQL statements with their bound parameters (the records' content) or full URLs.
QUIET_LIBRARIES = (
    "aiosqlite",
    "sqlalchemy",
    "asyncpg",
    "multipart",
    "python_multipart",
    "httpx",  # full URLs, query strings included
    "httpcore",
)


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except (TypeError, ValueError):  # arguments that do not match the format
        return f"{record.msg} (unformattable arguments)"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = _message(record)
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message[:MAX_MESSAGE],
        }
        if len(message) > MAX_MESSAGE:
            data["truncated"] = True
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=True)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn and the application alike."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    quiet = {
        name: {"handlers": [], "level": "WARNING", "propagate": True} for name in QUIET_LIBRARIES
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
            **quiet,
        },
    }
