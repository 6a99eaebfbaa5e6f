"""One TLS record and one ``send`` per response, where uvicorn makes two.

uvicorn writes a response's head (``http.response.start``) and its body
(``http.response.body``) to the transport in two calls. Over TLS each call becomes a TLS record
of its own and a ``send`` system call of its own, and on a loopback or a fast network that
second trip through the TLS layer and the kernel costs more than building most answers: about a
sixth of this server's CPU per review, measured (bench/RESULTS.md). The API server on the other
end pays for the extra record too.

``CoalescingTransport`` wraps the connection's transport and holds what is written until the
event loop's current turn ends: the task that wrote the response runs to its end, then every
response of that turn leaves, one write each (sending them together, after the turn's Python
work, also measured cheaper than interleaving the two). Once ``MAX_HELD_BYTES`` are held they
go at once, so a large or streamed response still meets the real transport's flow control
(``pause_writing``) and is never held whole in memory. Closing or half-closing flushes first,
so nothing written is lost or reordered; aborting drops the held bytes along with everything
else, as an abort does.
"""

from __future__ import annotations

import asyncio
from typing import Any

# A whole typical answer fits many times; past this, holding saves nothing and costs memory.
MAX_HELD_BYTES = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A transport that joins the writes of one response (or one loop turn) into a single write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._flush_scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._held.append(bytes(data))
        self._held_bytes += len(data)
        if self._held_bytes >= MAX_HELD_BYTES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Hand everything held to the real transport now, in one write."""
        held = self._held
        if not held:
            return
        self._held = []
        self._held_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = []
        self._held_bytes = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._held_bytes

    # Everything else is the real transport's.
    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()
