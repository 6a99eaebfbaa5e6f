"""Run the webhook: TLS, certificate and config hot reload, drain on SIGTERM, optional workers.

Why not plain ``uvicorn.run``:

* TLS comes from ``tls.ReloadingContext``: uvicorn gets its one stable SSLContext (through
  ``ssl_context_factory``) and a poll loop in the server's event loop (``reload``) swaps the
  certificate behind it, so a rotated Secret is served without a restart.
* uvicorn stops at once on SIGTERM. A webhook must first leave the Service's Endpoints:
  SIGTERM flips /readyz to 503 and keeps serving for ``drain_seconds``, then stops accepting
  and exits 0 once in-flight requests are answered.
* With several workers, the socket is bound once here (``sockets``) and ``supervisor`` spawns
  workers that each run this same server (with their own reload loops).
* The listeners are created here rather than by uvicorn: the TLS handshake gets a timeout (a
  client that connects and never says hello is dropped), every request must arrive within
  ``--header-timeout`` (``connections.TimedRequestProtocol``), and ``--health-port`` adds a
  plain-HTTP listener with only /healthz, /readyz and /metrics, for kubelet probes when
  ``--client-ca`` makes the main port refuse clients without a certificate.

A little over 300 lines as one concept: the server's life from bind to exit, where the order of
start, reload, drain and stop is the point and splitting it would scatter that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from webhook.config import Config
from webhook.errors import ConfigError
from webhook.pki import ensure_dev_certs
from webhook.server.app import ServiceState, create_app, create_routes
from webhook.server.connections import timed_protocol
from webhook.server.deadline import offload_executor
from webhook.server.logging_setup import setup_logging
from webhook.server.metrics import create_metrics, multiproc_dir_from_env, set_config_hash, worker_exited
from webhook.server.options import ServeOptions, StartupError, load_config, load_tls, one_line
from webhook.server.reload import CertificateReloader, ConfigReloader, file_signature, poll
from webhook.server.review_cache import ReviewCache
from webhook.server.sockets import bind, worker_socket
from webhook.server.supervisor import STARTUP_FAILURE, supervise
from webhook.server.tls import ReloadingContext

log = logging.getLogger("webhook.server")

# Connection hygiene: idle keep-alive connections are closed after 30 s, an HTTP head may not
# exceed 64 KiB (431, for either parser: see connections.py), and past --max-connections
# (options.LIMIT_CONCURRENCY unless set) concurrent connections/requests new requests get 503
# at once instead of queueing (the API server then applies failurePolicy, or reaches another
# replica on its next call).
KEEP_ALIVE_SECONDS = 30
MAX_INCOMPLETE_EVENT_BYTES = 64 * 1024
# The health port's own bound, so admission load never starves the kubelet's probes.
HEALTH_LIMIT_CONCURRENCY = 32
# After the drain, requests already in the server get this long to finish before they are
# cancelled: enough for one that arrived just before the drain ended (head and body within
# --header-timeout, then the review within deadlineSeconds). manifests/base/deployment.yaml's
# terminationGracePeriodSeconds covers preStop + drain + this (tests/server/test_reliability.py).
GRACEFUL_SHUTDOWN_SECONDS = 15
# Time a closing, idle connection gets to complete the TLS close handshake before it is dropped.
CLOSE_GRACE_SECONDS = 1.0
# Time the cluster-aware features get at shutdown (release the Lease, send queued Events).
CLUSTER_STOP_SECONDS = 3.0


@dataclass
class ServerView:
    """What the cluster code sees of this server (webhook.interface.ServerView)."""

    state: ServiceState
    tls: ReloadingContext
    registry: Any

    def config(self) -> Config:
        return self.state.loaded_config or self.state.config

    def serving_certificate(self) -> bytes | None:
        return self.tls.certificate_pem

    def changed(self) -> None:
        old_hash = self.state.config.config_hash
        new = self.state.set_config(self.config())
        if new.config_hash != old_hash:
            set_config_hash(self.state.metrics, new.config_hash, old_hash)
            log.info("kubernetes version applied", extra={"fields": {
                "kubernetes_version": str(new.kube_version), "config_hash": new.config_hash}})


@dataclass
class HealthListener:
    """The optional plain-HTTP port: its socket, its uvicorn config and its own connections."""

    sock: socket.socket
    config: uvicorn.Config
    server_state: ServerState


class WebhookServer(uvicorn.Server):
    """uvicorn's server plus the reload loop, the SIGTERM drain and an orphan check for workers."""

    def __init__(self, config: uvicorn.Config, state: ServiceState, options: ServeOptions,
                 checks: list[Callable[[], None]], parent_pid: int | None = None,
                 health: HealthListener | None = None) -> None:
        super().__init__(config)
        self.state = state
        self.options = options
        self.checks = checks
        self.parent_pid = parent_pid
        self.health = health
        self.drain_deadline: float | None = None
        self._drain_logged = False
        self._poller: asyncio.Task[None] | None = None

    def _listen(self, config: uvicorn.Config, server_state: ServerState,
                sock: socket.socket) -> Coroutine[Any, Any, asyncio.Server]:
        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=server_state, app_state=self.lifespan.state)

        handshake = {"ssl_handshake_timeout": self.options.header_timeout} if config.ssl else {}
        return asyncio.get_running_loop().create_server(protocol, sock=sock, ssl=config.ssl,
                                                        backlog=config.backlog, **handshake)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan only: the listeners are made here
        if not self.started:
            return
        for sock in sockets or []:
            self.servers.append(await self._listen(self.config, self.server_state, sock))
        if self.health is not None:
            self.servers.append(await self._listen(self.health.config, self.health.server_state, self.health.sock))
        self._poller = asyncio.create_task(poll(self.options.reload_interval, self.checks))
        if self.state.cluster is not None:
            await self.state.cluster.start()
        host, port = (sockets[0].getsockname()[:2] if sockets else (self.config.host, self.config.port))
        fields: dict[str, Any] = {"url": f"https://{host}:{port}", "pid": os.getpid(),
                                  "config_hash": self.state.config.config_hash}
        if self.health is not None:
            health_host, health_port = self.health.sock.getsockname()[:2]
            fields["health_url"] = f"http://{health_host}:{health_port}"
        log.info("serving", extra={"fields": fields})

    def _connections(self) -> list[Any]:
        health = list(self.health.server_state.connections) if self.health is not None else []
        return [*self.server_state.connections, *health]

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.state.cluster is not None:
            try:
                await asyncio.wait_for(self.state.cluster.stop(), CLUSTER_STOP_SECONDS)
            except Exception:  # noqa: BLE001 - a Lease not released expires; the exit must not wait
                log.warning("the cluster-aware features did not stop cleanly", exc_info=True)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.health is not None:  # uvicorn's shutdown only knows the main port's connections
            for connection in list(self.health.server_state.connections):
                connection.shutdown()
            self.health.sock.close()
        reaper = asyncio.create_task(self._abort_lingering())
        try:
            await super().shutdown(sockets=sockets)
        finally:
            reaper.cancel()

    async def _abort_lingering(self) -> None:
        """Drop connections that stay idle for CLOSE_GRACE_SECONDS after shutdown asked them to close.

        Closing TLS sends close_notify and then waits (up to 30 s) for the peer's; an idle
        keep-alive client that is not reading never answers, which would hold the exit back.
        A connection still answering a request is never touched.
        """
        idle_since: dict[object, float] = {}
        while True:
            now = time.monotonic()
            for connection in self._connections():
                cycle = getattr(connection, "cycle", None)  # uvicorn's per-request state, on both protocols
                if cycle is not None and not cycle.response_complete:
                    idle_since.pop(connection, None)
                elif now - idle_since.setdefault(connection, now) >= CLOSE_GRACE_SECONDS:
                    connection.transport.abort()
            await asyncio.sleep(0.1)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM drains first; SIGINT (or a second SIGTERM) stops now; a second SIGINT forces.

        Unlike uvicorn's, this never re-raises the signal after shutdown, so the exit code is 0.
        """
        self.state.draining = True  # no logging here: this runs inside a signal handler
        if sig == signal.SIGTERM and self.drain_deadline is None and self.options.drain_seconds > 0:
            self.drain_deadline = time.monotonic() + self.options.drain_seconds
            return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None and not self._drain_logged:
            self._drain_logged = True
            log.info("SIGTERM: draining (readyz 503, still serving)",
                     extra={"fields": {"drain_seconds": self.options.drain_seconds}})
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline and not self.should_exit:
            log.info("drain over: no new connections; finishing in-flight requests")
            self.should_exit = True
        if self.parent_pid is not None and os.getppid() != self.parent_pid and not self.should_exit:
            log.warning("supervisor is gone; stopping")
            self.should_exit = True
        return await super().on_tick(counter)


def _hardened(options: ServeOptions) -> dict[str, Any]:
    """The uvicorn settings both listeners share: bounded heads, arrival and keep-alive times,
    no access log or proxy headers (one place, so the two ports cannot drift apart)."""
    return {
        "log_config": None,
        "log_level": options.log_level,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "http": timed_protocol(options.header_timeout, MAX_INCOMPLETE_EVENT_BYTES),
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "h11_max_incomplete_event_size": MAX_INCOMPLETE_EVENT_BYTES,
    }


def _uvicorn_config(options: ServeOptions, state: ServiceState, tls: ReloadingContext) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(state),
        host=options.host,
        port=options.port,
        lifespan="on",
        workers=1,
        ssl_context_factory=lambda _config, _default: tls.context,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        limit_concurrency=options.max_connections + 1,  # uvicorn counts the asking connection too
        **_hardened(options),
    )


def _health_listener(options: ServeOptions, state: ServiceState, sock: socket.socket) -> HealthListener:
    """Plain HTTP on purpose: the kubelet's probes and Prometheus need no certificate, and the port
    carries no admission traffic (/mutate is 404 there)."""
    config = uvicorn.Config(
        create_routes(state),
        lifespan="off",
        limit_concurrency=HEALTH_LIMIT_CONCURRENCY,
        **_hardened(options),
    )
    config.load()
    return HealthListener(sock, config, ServerState())


def serve_worker(options: ServeOptions, sock: socket.socket, health_sock: socket.socket | None = None,
                 parent_pid: int | None = None) -> int:
    """Load config and certificate, then serve on ``sock`` (and ``health_sock``) until stopped.

    Raises StartupError.
    """
    config_signature = file_signature(options.config_file) if options.config_file else None
    try:
        config = load_config(options)
    except ConfigError as error:
        raise StartupError(one_line(error)) from None
    tls = load_tls(options)
    metrics = create_metrics(multiproc_dir_from_env())
    set_config_hash(metrics, config.config_hash, None)
    executor = offload_executor()
    state = ServiceState(config=config, metrics=metrics, max_body_bytes=options.max_body_bytes,
                         certificate_loaded=True, executor=executor,
                         review_cache=ReviewCache(options.review_cache) if options.review_cache > 0 else None)
    if options.cluster is not None:
        state.cluster = options.cluster(ServerView(state, tls, metrics.registry))
        state.observer = state.cluster.observer
        state.set_config(config)
        set_config_hash(metrics, state.config.config_hash, config.config_hash)
    checks: list[Callable[[], None]] = [CertificateReloader(tls, metrics).check]
    if options.config_file is not None:
        checks.append(ConfigReloader(options, state, config_signature).check)
    health = _health_listener(options, state, health_sock) if health_sock is not None else None
    server = WebhookServer(_uvicorn_config(options, state, tls), state, options, checks, parent_pid, health)
    try:
        server.run(sockets=[sock])
    finally:
        executor.shutdown(wait=False, cancel_futures=True)  # a late large review is not waited for
        worker_exited(metrics)
    return 0 if server.started else STARTUP_FAILURE


def _worker_main(options: ServeOptions, sock: socket.socket, health_sock: socket.socket | None,
                 parent_pid: int) -> None:
    """Entry point of a spawned worker (a fresh interpreter: set up logging again)."""
    setup_logging(options.log_level)
    os.setpgrp()  # a terminal's Ctrl+C reaches the supervisor only; it forwards exactly one signal
    try:
        code = serve_worker(options, worker_socket(sock), health_sock, parent_pid)
    except StartupError as error:
        log.error("worker cannot start", extra={"fields": {"error": str(error)}})
        code = STARTUP_FAILURE
    raise SystemExit(code)


def run(options: ServeOptions) -> int:
    """`serve`: check everything that can fail before binding, then serve (or supervise workers)."""
    try:
        generated = ensure_dev_certs(options.cert_dir)
    except (OSError, ConfigError) as error:
        raise StartupError(f"{options.cert_dir}: cannot create development certificates ({one_line(error)})") from None
    if generated is not None:
        log.warning("no tls.crt/tls.key given: serving a development certificate",
                    extra={"fields": {"ca_file": str(generated), "hint": f"curl --cacert {generated} ..."}})
    try:
        load_config(options)
    except ConfigError as error:
        raise StartupError(one_line(error)) from None
    load_tls(options)
    sock = bind(options.host, options.port, reuse_port=options.workers > 1)
    health_sock = None
    if options.health_port is not None:
        try:
            health_sock = bind(options.host, options.health_port, "--host/--health-port")
        except StartupError:
            sock.close()
            raise
    if options.workers <= 1:
        return serve_worker(options, sock, health_sock)
    return supervise(options.workers, _worker_main, (options, sock, health_sock), (sock, health_sock))
