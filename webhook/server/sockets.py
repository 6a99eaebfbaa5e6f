"""The listening sockets: bound once before any worker starts (so "address in use" is a clean
startup error), and with ``--workers`` on Linux one socket per worker on the same address,
which the kernel spreads new connections over (SO_REUSEPORT)."""

from __future__ import annotations

import socket
import sys

from webhook.server.options import StartupError

# Where the kernel balances connections between listening sockets that share a port (Linux).
REUSE_PORT: int | None = getattr(socket, "SO_REUSEPORT", None) if sys.platform.startswith("linux") else None


def bind(host: str, port: int, flags: str = "--host/--port", reuse_port: bool = False) -> socket.socket:
    """Bind once, before any worker starts, so "address in use" is a clean startup error.

    ``reuse_port``: the socket joins a group that the kernel spreads new connections over
    (SO_REUSEPORT), one listening socket per worker (see ``worker_socket``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and REUSE_PORT is not None:
            sock.setsockopt(socket.SOL_SOCKET, REUSE_PORT, 1)
        sock.bind((host, port))
    except (OSError, OverflowError) as error:
        sock.close()
        reason = getattr(error, "strerror", None) or str(error)
        raise StartupError(f"{flags} {host}:{port}: cannot listen ({reason})") from None
    sock.set_inheritable(True)
    return sock


def worker_socket(shared: socket.socket) -> socket.socket:
    """The socket a worker listens on: its own, on the supervisor's address, where the kernel
    can balance connections between workers (SO_REUSEPORT); else the shared one.

    With one shared socket, libuv accepts every connection waiting at once, so whichever worker
    wakes first takes a whole pool of connections opened together (as the API server opens
    its own) and keeps them for as long as they live; the benchmark saw one of two workers
    take all 16 in four runs of five. The supervisor's socket is bound, never listening, so
    it holds the port and gets no connections itself."""
    if REUSE_PORT is None or not shared.getsockopt(socket.SOL_SOCKET, REUSE_PORT):
        return shared
    host, port = shared.getsockname()[:2]
    own = bind(host, port, reuse_port=True)
    shared.close()  # this process's copy; the supervisor keeps the port
    return own
