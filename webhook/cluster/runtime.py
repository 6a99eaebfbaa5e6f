"""The cluster-aware features the command line turned on, as the server's ``ClusterView``.

`serve` builds ``ClusterOptions`` from its flags and hands the server ``factory(options)``; each
worker process calls it with a view of itself and gets a ``ClusterRuntime``: one API client,
and a background task per feature on the server's event loop (none on the review path).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook.cluster.autotls import AutoTls, AutoTlsOptions
from webhook.cluster.client import connect
from webhook.cluster.events import EventRecorder
from webhook.cluster.metrics import create_cluster_metrics
from webhook.cluster.namespaces import NamespaceCache
from webhook.cluster.versions import VersionDetector
from webhook.interface import ClusterFactory, ReviewObserver, ServerView
from webhook.kubeversion import KubeVersion

log = logging.getLogger("webhook.cluster")


@dataclass(frozen=True)
class ClusterOptions:
    """What `serve` was told about the cluster-aware features (picklable, for the workers)."""

    cert_dir: Path
    namespace: str | None = None  # where our Lease and Secret live (default: our own namespace)
    auto_tls: AutoTlsOptions | None = None
    events: bool = False
    events_queue: int = 1000
    namespace_defaults: bool = False
    version_interval_seconds: float = 300.0

    @property
    def any(self) -> bool:
        return self.auto_tls is not None or self.events or self.namespace_defaults


class ClusterRuntime:
    def __init__(self, options: ClusterOptions, server: ServerView) -> None:
        # The HTTP client logs every request at info (each watch renewal, each Event): the cluster
        # code logs what matters itself.
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        self.options = options
        self.server = server
        self.cluster = connect(options.namespace, create_cluster_metrics(server.registry))
        self.events = EventRecorder(self.cluster, options.events_queue) if options.events else None
        self.observer: ReviewObserver | None = self.events
        self.namespaces = NamespaceCache(self.cluster, server, self.events, server.changed) \
            if options.namespace_defaults else None
        self.versions = VersionDetector(self.cluster, server, server.changed, options.version_interval_seconds)
        self.auto_tls = AutoTls(self.cluster, options.auto_tls, options.cert_dir, server.serving_certificate) \
            if options.auto_tls is not None else None
        self._tasks: list[asyncio.Task[None]] = []

    def namespace_defaults(self, namespace: str) -> tuple[Mapping[str, str] | None, bool]:
        return self.namespaces.lookup(namespace) if self.namespaces is not None else (None, False)

    def kubernetes_version(self) -> KubeVersion | None:
        return self.versions.version

    def not_ready_reasons(self) -> list[str]:
        return self.auto_tls.not_ready_reasons() if self.auto_tls is not None else []

    async def start(self) -> None:
        runs: list[Coroutine[Any, Any, None]] = [self.versions.run()]
        if self.events is not None:
            runs.append(self.events.run())
        if self.namespaces is not None:
            runs.append(self.namespaces.run())
        if self.auto_tls is not None:
            runs += [self.auto_tls.elector.run(), self.auto_tls.lead(), self.auto_tls.watch_secret(),
                     self.auto_tls.poll_secret(), self.auto_tls.report_serving()]
        self._tasks = [asyncio.create_task(_logged(run)) for run in runs]
        log.info("cluster-aware features started", extra={"fields": {
            "namespace": self.cluster.namespace, "identity": self.cluster.identity,
            "auto_tls": self.auto_tls is not None, "events": self.events is not None,
            "namespace_defaults": self.namespaces is not None}})

    async def stop(self) -> None:
        if self.events is not None:
            with contextlib.suppress(Exception):
                await self.events.flush()
        if self.auto_tls is not None:
            await self.auto_tls.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.cluster.client.close()


async def _logged(run: Coroutine[Any, Any, None]) -> None:
    """A feature's loop that ends by a bug is logged (its feature stops; reviews go on)."""
    try:
        await run
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("a cluster-aware task stopped")


def build(options: ClusterOptions, server: ServerView) -> ClusterRuntime:
    return ClusterRuntime(options, server)


def factory(options: ClusterOptions) -> ClusterFactory:
    """The server's factory for these options (a partial of a module function: picklable)."""
    return functools.partial(build, options)
