"""One JSON object per log line, so log collectors index fields instead of parsing prose.

A record's ``fields`` extra (a dict) is merged into the top level of its line; that is how
the per-review line carries uid, decision, reason and the rest as searchable keys.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any

import orjson

LEVELS = ("critical", "error", "warning", "info", "debug")

# uvicorn's access log would add a second line per review (and one per probe); we log reviews ourselves.
_QUIET = {"uvicorn.access": logging.WARNING}


class JsonFormatter(logging.Formatter):
    """Render a record as a single JSON line: time, level, logger, pid (workers share stderr), msg, fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def setup_logging(level: str = "info") -> None:
    """Route every logger (ours and uvicorn's) through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(_QUIET.get(name, logging.NOTSET))
