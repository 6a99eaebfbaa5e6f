"""The buffered JSON log handler: every line arrives, in order, warnings at once, info within the interval."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import time

from webhook.server.logging_setup import BufferedStreamHandler, JsonFormatter


def _handler(stream: io.StringIO, interval: float) -> logging.Logger:
    handler = BufferedStreamHandler(stream, interval=interval)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.buffered.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


class _Counting(io.StringIO):
    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_info_lines_are_flushed_by_the_timer_and_warnings_at_once() -> None:
    stream = _Counting()
    logger = _handler(stream, interval=0.05)
    for i in range(100):
        logger.info("review", extra={"fields": {"uid": str(i)}})
    assert stream.flushes == 0  # no flush per line
    logger.warning("bad", extra={"fields": {"uid": "w"}})
    assert stream.flushes == 1
    logger.info("later")
    deadline = time.monotonic() + 5
    while stream.flushes < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.flushes >= 2
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line.get("uid") for line in lines[:101]] == [*map(str, range(100)), "w"]
    assert lines[-1]["msg"] == "later"
    assert all(line["pid"] == os.getpid() for line in lines)
    logger.handlers[0].close()


def test_log_fields_writes_the_line_a_record_would_give() -> None:
    from webhook.server.logging_setup import log_fields

    stream = io.StringIO()
    logger = _handler(stream, interval=60)
    fields = {"uid": "u-1", "profiles": ["a", "b"], "duration_ms": 0.25}
    log_fields(logger, logging.INFO, "review", fields)  # the direct path: our handler alone
    logger.info("review", extra={"fields": fields})  # the ordinary record
    log_fields(logger, logging.DEBUG, "hidden", fields)  # below the logger's level: nothing
    logger.handlers[0].flush()
    direct, ordinary = (json.loads(line) for line in stream.getvalue().splitlines())
    for line in (direct, ordinary):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line.pop("time"))
    assert direct == ordinary == {"level": "info", "logger": logger.name, "pid": os.getpid(), "msg": "review", **fields}
    logger.handlers[0].close()


def test_log_fields_gives_filters_and_other_handlers_the_record() -> None:
    from webhook.server.logging_setup import log_fields

    stream = io.StringIO()
    logger = _handler(stream, interval=60)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            seen.append(record)
            return record.getMessage() != "dropped"

    logger.addFilter(Keep())
    log_fields(logger, logging.INFO, "dropped", {"uid": "x"})
    log_fields(logger, logging.INFO, "kept", {"uid": "y"})
    logger.handlers[0].flush()
    assert [r.fields for r in seen] == [{"uid": "x"}, {"uid": "y"}]  # type: ignore[attr-defined]
    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == ["kept"]
    logger.handlers[0].close()



def test_line_times_are_what_datetime_gives() -> None:
    """The cached per-millisecond text equals datetime's own ISO form, at and around every
    millisecond and second boundary (where float rounding decides), whatever came before it."""
    formatter = JsonFormatter()
    for second in (0, 1, 1_764_000_000, 4_000_000_000):
        for milli in (*range(0, 1000, 7), 999):
            for offset in (0.0, 4e-7, 5e-7, 6e-7, -4e-7, -5e-7, 4.995e-4, 9.995e-4):
                created = second + milli / 1000 + offset
                if created >= 0:
                    assert formatter._time(created) == dt.datetime.fromtimestamp(created, dt.UTC).isoformat(
                        timespec="milliseconds"), created
    assert formatter._time(-1.5) == "1969-12-31T23:59:58.500+00:00"
