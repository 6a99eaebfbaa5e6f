"""CoalescingTransport: a response's writes leave together, in order, and nothing is lost.

The unit tests drive the wrapper on a real event loop over a transport that records what it is
given (the one stand-in here: a socket would hide how many writes it got). The server tests
count the TLS records a real server sends for one response.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
from typing import Any

import pytest

from webhook.server.coalescing import MAX_HELD_BYTES, CoalescingTransport

from conftest import Server, load_review, ssl_context_from


class RecordingTransport(asyncio.Transport):
    """Keeps every write and close/abort in the order they came."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Any] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.events.append(bytes(data))

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def write_eof(self) -> None:
        self.events.append("eof")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def run(steps: Any) -> list[Any]:
    """Run ``steps(coalescing, recorded)`` as a coroutine on a fresh loop; the recorded events."""
    recorded = RecordingTransport()

    async def main() -> None:
        coalescing = CoalescingTransport(recorded, asyncio.get_running_loop())
        await steps(coalescing, recorded)

    asyncio.run(main())
    return recorded.events


def test_writes_of_one_loop_turn_leave_as_one_write_after_it() -> None:
    async def steps(coalescing: CoalescingTransport, recorded: RecordingTransport) -> None:
        coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalescing.write(bytearray(b"{}"))
        coalescing.write(b"")
        assert recorded.events == []  # held until the turn ends
        assert coalescing.get_write_buffer_size() == 7 + 21
        await asyncio.sleep(0)
        assert recorded.events == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
        coalescing.writelines([b"a", b"b"])
        await asyncio.sleep(0)

    assert run(steps) == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"ab"]


def test_past_the_bound_held_bytes_leave_at_once() -> None:
    """A large or streamed body meets the real transport's flow control, and is not held whole."""
    chunk = b"x" * (MAX_HELD_BYTES // 4)

    async def steps(coalescing: CoalescingTransport, recorded: RecordingTransport) -> None:
        for _ in range(3):
            coalescing.write(chunk)
        assert recorded.events == []
        coalescing.write(chunk)  # the fourth reaches the bound: all four go, in one write
        assert recorded.events == [chunk * 4]
        assert coalescing.get_write_buffer_size() == 7
        coalescing.write(b"tail")
        await asyncio.sleep(0)

    assert run(steps) == [chunk * 4, b"tail"]


def test_a_streamed_response_leaves_turn_by_turn() -> None:
    async def steps(coalescing: CoalescingTransport, recorded: RecordingTransport) -> None:
        for chunk in (b"one", b"two", b"three"):
            coalescing.write(chunk)
            await asyncio.sleep(0)
            assert recorded.events[-1] == chunk

    assert run(steps) == [b"one", b"two", b"three"]


def test_close_and_write_eof_send_what_is_held_first() -> None:
    async def close(coalescing: CoalescingTransport, recorded: RecordingTransport) -> None:
        coalescing.write(b"head")
        coalescing.write(b"body")
        coalescing.close()
        coalescing.write(b"late")  # after close: dropped, like a closing transport drops it
        await asyncio.sleep(0)

    async def eof(coalescing: CoalescingTransport, recorded: RecordingTransport) -> None:
        coalescing.write(b"last")
        coalescing.write_eof()

    assert run(close) == [b"headbody", "close"]
    assert run(eof) == [b"last", "eof"]


def test_abort_drops_what_is_held() -> None:
    async def steps(coalescing: CoalescingTransport, recorded: RecordingTransport) -> None:
        coalescing.write(b"never")
        coalescing.abort()
        await asyncio.sleep(0)

    assert run(steps) == ["abort"]


def test_everything_else_is_the_real_transports() -> None:
    async def steps(coalescing: CoalescingTransport, recorded: RecordingTransport) -> None:
        assert coalescing.get_extra_info("peername") == ("127.0.0.1", 1)
        assert coalescing.get_extra_info("socket", "none") == "none"
        assert not coalescing.is_closing()
        recorded.closing = True
        assert coalescing.is_closing()

    assert run(steps) == []


# --- on a real server ----------------------------------------------------------------------------


class RecordCounter:
    """A TLS client over a plain socket that counts the TLS records the server sends."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ssl_context_from(server.ca_file).wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self.pending = b""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_out()
                self._read_records()
        self._flush_out()

    def _flush_out(self) -> None:
        if data := self.outgoing.read():
            self.sock.sendall(data)

    def _read_records(self) -> int:
        """Feed the next whole TLS records to the TLS object; how many there were."""
        while len(self.pending) < 5 or len(self.pending) < 5 + struct.unpack(">H", self.pending[3:5])[0]:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.pending += chunk
        count = 0
        while len(self.pending) >= 5 and len(self.pending) >= 5 + struct.unpack(">H", self.pending[3:5])[0]:
            size = 5 + struct.unpack(">H", self.pending[3:5])[0]
            self.incoming.write(self.pending[:size])
            self.pending = self.pending[size:]
            count += 1
        return count

    def exchange(self, request: bytes) -> tuple[bytes, int]:
        """Send a request; (the whole response, the number of TLS records it came in)."""
        self.tls.write(request)
        self._flush_out()
        response, records = b"", 0
        while not _complete(response):
            records += self._read_records()
            while True:
                try:
                    response += self.tls.read(65536)
                except ssl.SSLWantReadError:
                    break
        return response, records

    def close(self) -> None:
        self.sock.close()


def _complete(response: bytes) -> bool:
    head, sep, body = response.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return len(body) >= length


def _post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize("request_bytes", [
    _post("/mutate", json.dumps(load_review("pod-basic")).encode()),  # an injected Pod
    _post("/mutate", b"{not json"),  # an error answer
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",  # FastAPI's routes go through it too
], ids=["review", "bad-request", "healthz"])
def test_a_response_comes_in_one_tls_record(server: Server, request_bytes: bytes) -> None:
    client = RecordCounter(server)
    try:
        client.exchange(request_bytes)  # the first answer also carries the TLS 1.3 session tickets
        for _ in range(3):
            response, records = client.exchange(request_bytes)
            assert response.startswith(b"HTTP/1.1 ")
            assert records == 1, f"head and body came in {records} TLS records"
    finally:
        client.close()


def test_a_coalesced_review_answer_is_whole(server: Server) -> None:
    review = load_review("pod-basic")
    client = RecordCounter(server)
    try:
        response, _ = client.exchange(_post("/mutate", json.dumps(review).encode()))
    finally:
        client.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    answered = json.loads(body)
    assert answered["response"]["uid"] == review["request"]["uid"]
    assert answered["response"]["patchType"] == "JSONPatch"
