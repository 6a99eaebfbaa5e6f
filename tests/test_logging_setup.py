"""The buffered JSON log handler: every line arrives, in order, warnings at once, info within the interval."""

from __future__ import annotations

import io
import json
import logging
import os
import time

from webhook.logging_setup import BufferedStreamHandler, JsonFormatter


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
