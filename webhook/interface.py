"""The one meeting point of the HTTPS edge and the cluster code.

``webhook.server`` and ``webhook.cluster`` may not import each other (the import-linter
contracts in pyproject.toml); both import this module, which imports only the core. The
command line (``webhook.tools``) is what joins them: `serve` hands the server a factory of
the cluster code (``ClusterFactory``), the server builds it with a ``ServerView`` of itself
and uses the ``ClusterView`` it gets back:

- ``ReviewObserver``: the server tells it of every decision (the cluster code emits Events);
- namespace defaults and the detected Kubernetes version, read on the review path from
  in-memory caches the cluster code keeps (never an API call during a review);
- readiness (auto-TLS: not ready until a trusted serving pair is loaded) and a lifecycle the
  server's event loop runs (start, stop).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from webhook.config import Config
from webhook.kubeversion import KubeVersion
from webhook.mutate import Outcome


class ReviewObserver(Protocol):
    """Hears of every review the server answered with a decision (not of HTTP errors: those
    have no Pod to speak of)."""

    def reviewed(self, outcome: Outcome) -> None:
        """Called on the server's event loop once the reply has been handed over, so it must
        return at once: anything slow (an API call) is queued and done elsewhere. ``outcome``
        is shared and must not be changed; an answer from the review cache carries no patch or
        patched Pod. An exception is logged and costs nothing but this call."""


class ServerView(Protocol):
    """What the server shows the cluster code of itself."""

    registry: Any  # the Prometheus CollectorRegistry /metrics exposes

    def config(self) -> Config:
        """The config in force (the file's, before a detected version is applied)."""

    def serving_certificate(self) -> bytes | None:
        """The PEM of the leaf certificate the server serves now (None before one is loaded)."""

    def changed(self) -> None:
        """The cluster's view changed (namespace defaults, the detected version): answers given
        before may differ now, so the server forgets cached ones and takes the version again."""


class ClusterView(Protocol):
    """What the cluster code gives the server; every method answers from memory, at once."""

    observer: ReviewObserver | None

    def namespace_defaults(self, namespace: str) -> tuple[Mapping[str, str] | None, bool]:
        """A namespace's annotations (None: not known) and whether they are still loading."""

    def kubernetes_version(self) -> KubeVersion | None:
        """The version injection targets under `kubernetesVersion: auto` (None: use the config's)."""

    def not_ready_reasons(self) -> list[str]:
        """Why /readyz must fail (empty: ready as far as the cluster code goes)."""

    async def start(self) -> None:
        """Start the background tasks (on the server's event loop); must not wait on the API."""

    async def stop(self) -> None:
        """Stop them, releasing what is held (a Lease) within a few seconds at most."""


ClusterFactory = Callable[[ServerView], ClusterView]
