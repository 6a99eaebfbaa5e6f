"""Connection hygiene uvicorn lacks: each request must arrive within a bounded time (slowloris).

uvicorn closes idle keep-alive connections, but not a client that sends its request head (or
body) one byte at a time: such a connection holds a socket and a ``limit_concurrency`` slot for
as long as the client likes, and a few hundred of them lock everyone else out.
``TimedRequestProtocol`` gives every request ``request_timeout`` seconds to arrive complete,
headers and body, counted from its first byte (for a connection's first request: from the TCP
accept, so the TLS handshake counts too); then it answers 408 and closes. A request that has
fully arrived is not timed here; the review deadline bounds the rest.

It is also gentler than uvicorn with connections that are brand new at shutdown: uvicorn closes
every connection not inside a request at once, including one accepted a moment ago whose first
request is still on the wire, which the client then sees as lost. Here such a connection may
still deliver that request; it is answered with ``Connection: close``. The server's reaper of
lingering connections bounds the wait.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HTTPProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HTTPProtocol  # type: ignore[assignment]

log = logging.getLogger("webhook.connections")

REQUEST_TIMEOUT_SECONDS = 10.0
# After the 408, the TLS close handshake gets this long before the connection is dropped.
CLOSE_GRACE_SECONDS = 1.0

_TIMEOUT_BODY = b'{"error":"request not received in time"}'
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


class TimedRequestProtocol(_HTTPProtocol):
    """uvicorn's HTTP/1.1 protocol with a request-arrival timeout and a gentle shutdown."""

    request_timeout: float = REQUEST_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Built by the listener at accept, before the TLS handshake: the first request's clock starts here.
        self._accepted_at = self.loop.time()
        self._arrival_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._closing_after_first = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arrival_timer = self.loop.call_at(self._accepted_at + self.request_timeout, self._arrival_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
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
            self.transport.write(TIMEOUT_RESPONSE)
            self.transport.close()
            # A client that does not read would hold the TLS close handshake open.
            self._abort_timer = self.loop.call_later(CLOSE_GRACE_SECONDS, self.transport.abort)
        else:
            # The app is waiting for the rest of the body; it sees a disconnect and answers nothing.
            self.transport.abort()


def timed_protocol(request_timeout: float) -> type[TimedRequestProtocol]:
    """The protocol class to give uvicorn, with this server's timeout."""
    return type("TimedRequestProtocol", (TimedRequestProtocol,), {"request_timeout": request_timeout})
