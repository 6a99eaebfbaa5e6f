"""``serve --workers N``: one process binds the socket(s), N spawned workers serve on them.

The supervisor does no admission work. It restarts a worker that dies, stops everything when
a worker reports that it cannot start (it would fail the same way again), forwards exactly one
SIGTERM/SIGINT to every worker (each then drains like a single-process server), and gives
them a shared PROMETHEUS_MULTIPROC_DIR so /metrics on any worker counts all of them.

The workers accept from one shared socket, and libuv (under uvloop) accepts every connection
that is waiting at once: when the API server opens its pool of keep-alive connections
together, one worker could take them all and leave the others idle for as long as they live
(the benchmark saw 16 of 16 on one worker in four runs of five). UV_TCP_SINGLE_ACCEPT=1,
libuv's switch for servers of several processes, makes a worker accept one connection and
yield, so they share them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from webhook.metrics import MULTIPROC_ENV

log = logging.getLogger("webhook.server")

STARTUP_FAILURE = 3  # a worker's exit code for "would fail the same way on restart"
SINGLE_ACCEPT_ENV = "UV_TCP_SINGLE_ACCEPT"
POLL_SECONDS = 0.5


def supervise(workers: int, target: Callable[..., None], args: tuple[Any, ...],
              sockets: tuple[socket.socket | None, ...]) -> int:
    """Keep ``workers`` processes running ``target(*args, supervisor_pid)``; forward SIGTERM/SIGINT
    and wait for them. ``sockets`` are inherited by the workers and closed here at the end."""
    spawn = multiprocessing.get_context("spawn")
    received: list[int] = []
    stop = threading.Event()

    def on_signal(sig: int, frame: FrameType | None) -> None:
        received.append(sig)
        stop.set()

    def start() -> multiprocessing.process.BaseProcess:
        worker = spawn.Process(target=target, args=(*args, os.getpid()), name="sidecar-injector-worker")
        worker.start()
        return worker

    with tempfile.TemporaryDirectory(prefix="sidecar-injector-metrics-") as metrics_dir:
        # prometheus_client chooses file-backed values at import; workers import it after this is set.
        previous_env = {name: os.environ.get(name) for name in (MULTIPROC_ENV, SINGLE_ACCEPT_ENV)}
        os.environ[MULTIPROC_ENV] = metrics_dir
        os.environ.setdefault(SINGLE_ACCEPT_ENV, "1")  # an operator's own setting wins
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        exit_code = 0
        try:
            running = [start() for _ in range(workers)]
            log.info("supervising workers", extra={"fields": {"pids": [w.pid for w in running]}})
            while not stop.wait(POLL_SECONDS):
                for index, worker in enumerate(running):
                    if worker.is_alive():
                        continue
                    if worker.exitcode == STARTUP_FAILURE:
                        log.error("a worker failed to start; stopping", extra={"fields": {"pid": worker.pid}})
                        exit_code = 1
                        stop.set()
                        break
                    log.warning("worker exited; starting another",
                                extra={"fields": {"pid": worker.pid, "exitcode": worker.exitcode}})
                    running[index] = start()
            forward = received[0] if received else signal.SIGTERM
            for worker in running:
                if worker.is_alive() and worker.pid is not None:
                    os.kill(worker.pid, forward)
            for worker in running:
                worker.join()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for name, value in previous_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            for sock in sockets:
                if sock is not None:
                    sock.close()
    log.info("all workers stopped")
    return exit_code
