"""Connection hygiene uvicorn lacks: each request must arrive within a bounded time (slowloris).

uvicorn closes idle keep-alive connections, but not a client that sends its request head (or
body) one byte at a time: such a connection holds a socket and a ``limit_concurrency`` slot for
as long as the client likes, and a few hundred of them lock everyone else out.
``TimedRequestProtocol`` gives every request ``request_timeout`` seconds to arrive complete,
headers and body, counted from its first byte (for a connection's first request: from the TCP
accept, so the TLS handshake counts too); then it answers 408 and closes. A request that has
fully arrived is not timed here; the review deadline bounds the rest.

The request head is also bounded in size (``max_head_bytes``, answered 431): uvicorn applies its
limit to the h11 parser only, and with httptools one connection could otherwise stream an
endless header into memory within the arrival time. Errors found before the app runs (timeout,
oversized or unparsable head) are answered with the same JSON ``{"error": ...}`` body as the
app's own. A connection whose response went out before its request body had arrived (an early
error answer) is closed: the rest of that body must not be parsed as the next request.

Each response's head and body leave in one TLS record and one write (``webhook.server.coalescing``).

It is also gentler than uvicorn with connections that are brand new at shutdown: uvicorn closes
every connection not inside a request at once, including one accepted a moment ago whose first
request is still on the wire, which the client then sees as lost. Here such a connection may
still deliver that request; it is answered with ``Connection: close``. The server's reaper of
lingering connections bounds the wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HTTPProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HTTPProtocol  # type: ignore[assignment]

from webhook.server.coalescing import CoalescingTransport

log = logging.getLogger("webhook.connections")

REQUEST_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 64 * 1024
# After an error answer, the TLS close handshake gets this long before the connection is dropped.
CLOSE_GRACE_SECONDS = 1.0


def error_response(status: str, message: str) -> bytes:
    """A whole HTTP/1.1 error response with a JSON body, closing the connection."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


class TimedRequestProtocol(_HTTPProtocol):
    """uvicorn's HTTP/1.1 protocol with a request-arrival timeout and a gentle shutdown."""

    request_timeout: float = REQUEST_TIMEOUT_SECONDS
    max_head_bytes: int = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built by the listener at accept, before the TLS handshake: the first request's clock starts here.
        self._accepted_at = self.loop.time()
        self._arrival_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._closing_after_first = False
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = CoalescingTransport(transport, self.loop)  # a response's head and body in one record
        self._arrival_timer = self.loop.call_at(self._accepted_at + self.request_timeout, self._arrival_timeout)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # these bytes are (or start) a request head
            self._head_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self.cycle is not cycle:
            self._head_bytes = 0  # the head is complete
        elif self._head_bytes > self.max_head_bytes:
            self._reply_and_close(error_response(
                "431 Request Header Fields Too Large", f"request head exceeds {self.max_head_bytes} bytes"))
            return
        if self._arriving():
            if self._arrival_timer is None:
                self._arrival_timer = self.loop.call_later(self.request_timeout, self._arrival_timeout)
        else:
            self._cancel_arrival_timer()
        if self._closing_after_first and self.cycle is not None:
            self.cycle.keep_alive = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_arrival_timer()
        if self._abort_timer is not None:
            self._abort_timer.cancel()
            self._abort_timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        # self.cycle is the request just answered, unless a pipelined one was parsed since (its
        # response is not complete): then that newer one's body may well be on its way.
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and cycle.more_body and not self.transport.is_closing():
            self._close()  # answered before the body arrived; uvicorn's own handling then stops here
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """An unparsable request: uvicorn's answer, with the JSON body every other error has."""
        self._reply_and_close(error_response("400 Bad Request", msg))

    def shutdown(self) -> None:
        """Server shutdown: a connection that has not sent its first request yet may still send it."""
        if self.cycle is None and not self.transport.is_closing():
            self._closing_after_first = True
            return
        super().shutdown()

    def _arriving(self) -> bool:
        """A request is on its way: no complete head yet, or its body is still coming."""
        cycle = self.cycle
        return cycle is None or cycle.response_complete or cycle.more_body

    def _cancel_arrival_timer(self) -> None:
        if self._arrival_timer is not None:
            self._arrival_timer.cancel()
            self._arrival_timer = None

    def _arrival_timeout(self) -> None:
        self._arrival_timer = None
        if self.transport.is_closing() or not self._arriving():
            return
        log.debug("request not received in time; closing", extra={"fields": {"client": self.client}})
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self._reply_and_close(error_response("408 Request Timeout", "request not received in time"))
        else:
            # The app is waiting for the rest of the body; it sees a disconnect and answers nothing.
            self.transport.abort()

    def _reply_and_close(self, response: bytes) -> None:
        self.transport.write(response)
        self._close()

    def _close(self) -> None:
        self.transport.close()
        # A client that does not read would hold the TLS close handshake open.
        self._abort_timer = self.loop.call_later(CLOSE_GRACE_SECONDS, self.transport.abort)


def timed_protocol(request_timeout: float, max_head_bytes: int = MAX_HEAD_BYTES) -> type[TimedRequestProtocol]:
    """The protocol class to give uvicorn, with this server's bounds."""
    return type("TimedRequestProtocol", (TimedRequestProtocol,),
                {"request_timeout": request_timeout, "max_head_bytes": max_head_bytes})
