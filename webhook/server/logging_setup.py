"""One JSON object per log line, so log collectors index fields instead of parsing prose.

A record's ``fields`` extra (a dict) is merged into the top level of its line; that is how
the per-review line carries uid, decision, reason and the rest as searchable keys.

The server writes one line per review, so the handler is built for that rate: records do
not look up process, thread and multiprocessing names (the pid is read by the formatter),
and lines below WARNING are buffered and written out by a flusher thread every
``FLUSH_INTERVAL_SECONDS`` (and at exit) instead of one ``write`` syscall per line. WARNING
and above are written at once, together with anything buffered before them, so lines stay
in order. A process killed with SIGKILL can lose the last interval's info lines.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import sys
import threading
import time
from typing import IO, Any

import orjson

LEVELS = ("critical", "error", "warning", "info", "debug")

# uvicorn's access log would add a second line per review (and one per probe); we log reviews ourselves.
_QUIET = {"uvicorn.access": logging.WARNING}

FLUSH_INTERVAL_SECONDS = 0.1
_BUFFER_BYTES = 64 * 1024


class JsonFormatter(logging.Formatter):
    """Render a record as a single JSON line: time, level, logger, pid (workers share stderr), msg, fields."""

    _second: int | None = None
    _second_text = ""
    _milli: int | None = None
    _milli_text = ""

    def _time(self, created: float) -> str:
        """ISO 8601 UTC with milliseconds, as datetime's isoformat gives it (the time rounded to the
        microsecond, then cut to the millisecond); the text is made once per millisecond, the
        part up to the second once per second (a datetime per line cost ~1.5 us)."""
        if created < 0:
            return dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
        second = int(created)
        milli = second * 1000 + round((created - second) * 1e6) // 1000  # as datetime rounds
        if milli != self._milli:
            second, part = divmod(milli, 1000)
            if second != self._second:
                self._second_text = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
                self._second = second
            self._milli_text = f"{self._second_text}.{part:03d}+00:00"
            self._milli = milli
        return self._milli_text

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        exception = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(record.created, record.levelname, record.name, record.getMessage(),
                         fields if isinstance(fields, dict) else None, exception)

    def line(self, created: float, level_name: str, logger: str, msg: str, fields: dict[str, Any] | None,
             exception: str | None = None) -> str:
        """The JSON line of a record, from its parts (``log_fields`` has no record)."""
        line: dict[str, Any] = {
            "time": self._time(created),
            "level": level_name.lower(),
            "logger": logger,
            "pid": os.getpid(),  # not record.process: logProcesses is off
            "msg": msg,
        }
        if fields is not None:
            line.update(fields)
        if exception is not None:
            line["exception"] = exception
        return orjson.dumps(line, default=str).decode()


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that flushes at WARNING and above, and otherwise every ``interval`` seconds."""

    def __init__(self, stream: IO[str], interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        super().__init__(stream)
        self.interval = interval
        self._dirty = False
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, name="log-flusher", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record) + self.terminator, record.levelno)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)

    def emit_fields(self, level: int, logger: str, msg: str, fields: dict[str, Any]) -> None:
        """What ``emit`` writes for a record with these parts, without building the record."""
        formatter = self.formatter
        assert isinstance(formatter, JsonFormatter)
        line = formatter.line(time.time(), logging.getLevelName(level), logger, msg, fields)
        try:
            self._write(line + self.terminator, level)
        except Exception:  # noqa: BLE001 - as emit: a log line must never fail a review
            self.handleError(logging.makeLogRecord({"name": logger, "levelno": level, "msg": msg}))

    def _write(self, line: str, level: int) -> None:
        with self.lock:  # type: ignore[union-attr]
            self.stream.write(line)
            if level >= logging.WARNING:
                self.stream.flush()
                self._dirty = False
            else:
                self._dirty = True

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._dirty = False
            if self.stream and hasattr(self.stream, "flush"):
                self.stream.flush()

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.interval):
            if self._dirty:
                try:
                    self.flush()
                except (OSError, ValueError):  # stream closed or gone: nothing left to do
                    return

    def close(self) -> None:
        self._stop.set()
        try:
            self.flush()
        except (OSError, ValueError):
            pass
        super().close()


def log_fields(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> None:
    """``logger.log(level, msg, extra={"fields": fields})``, without the LogRecord when the line
    would reach our JSON handler alone (no filter, no other handler on the way): the per-review
    line then costs half as much. Anything else (a test's capture, an extra handler) gets the
    ordinary record."""
    if not logger.isEnabledFor(level):
        return
    handler = _sole_json_handler(logger, level)
    if handler is None:
        logger.log(level, msg, extra={"fields": fields})
    else:
        handler.emit_fields(level, logger.name, msg, fields)


def _sole_json_handler(logger: logging.Logger, level: int) -> BufferedStreamHandler | None:
    """The one handler a record of ``logger`` at ``level`` would reach, if it is ours and nothing
    on the way could filter or change the record."""
    found: BufferedStreamHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (found is not None or type(handler) is not BufferedStreamHandler or handler.filters
                    or type(handler.formatter) is not JsonFormatter):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found if found is not None and level >= found.level else None


def _buffered_stderr() -> IO[str] | None:
    """A block-buffered text stream on stderr's file descriptor (None if stderr has none, e.g. captured)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    raw = open(fd, "wb", buffering=_BUFFER_BYTES, closefd=False)  # noqa: SIM115 - lives as long as the handler
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=False)


def setup_logging(level: str = "info") -> None:
    """Route every logger (ours and uvicorn's) through one JSON handler on stderr."""
    # Each record would otherwise look up the pid, the thread and the multiprocessing process name.
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logThreads = False
    # ... and find its caller's file, line and function by walking the stack (the logging
    # HOWTO's own optimisation): no line shows them.
    logging._srcfile = None
    stream = _buffered_stderr()
    handler: logging.Handler = (BufferedStreamHandler(stream) if stream is not None
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for previous in root.handlers:
        if isinstance(previous, BufferedStreamHandler):
            previous.close()  # stops its flusher after writing out what it holds
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(_QUIET.get(name, logging.NOTSET))
