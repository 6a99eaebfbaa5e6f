"""``serve --workers N``: one process binds the socket(s), N spawned workers serve on them
(on Linux each worker listens on a socket of its own on that address, so that the kernel
spreads connections between them: ``sockets.worker_socket``).

The supervisor does no admission work. It restarts a worker that dies, stops everything when
a worker reports that it cannot start (it would fail the same way again), forwards exactly one
SIGTERM/SIGINT to every worker (each then drains like a single-process server), and gives
them a shared PROMETHEUS_MULTIPROC_DIR so /metrics on any worker counts all of them.
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

from webhook.server.metrics import MULTIPROC_ENV

log = logging.getLogger("webhook.server")

STARTUP_FAILURE = 3  # a worker's exit code for "would fail the same way on restart"
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
        previous_dir = os.environ.get(MULTIPROC_ENV)
        os.environ[MULTIPROC_ENV] = metrics_dir
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
            if previous_dir is None:
                os.environ.pop(MULTIPROC_ENV, None)
            else:
                os.environ[MULTIPROC_ENV] = previous_dir
            for sock in sockets:
                if sock is not None:
                    sock.close()
    log.info("all workers stopped")
    return exit_code
