"""The connection to the API server, and who we are in it.

A lightkube AsyncClient from the in-cluster service account, else KUBECONFIG (or
~/.kube/config), so the same binary runs as a Pod and as a process on a developer's host.
Every API call of the cluster code goes through ``guarded``: a failure is logged once per
kind of failure (a missing permission names the verb and resource the RBAC overlay grants)
and counted, and never raises into a review.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from lightkube import ApiError, AsyncClient, ConfigError, KubeConfig

from webhook.cluster.metrics import ClusterMetrics

log = logging.getLogger("webhook.cluster")

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "sidecar-injector"
FIELD_MANAGER = "sidecar-injector"
T = TypeVar("T")


def install_namespace(explicit: str | None = None) -> str:
    """Where our own objects (Lease, Secret) live: the flag, POD_NAMESPACE (the Downward API),
    the service account's namespace, or the manifests' default."""
    if explicit:
        return explicit
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or DEFAULT_NAMESPACE
    except OSError:
        return DEFAULT_NAMESPACE


def identity() -> str:
    """This process, unique among the replicas: the Pod name (POD_NAME, or the hostname a
    Pod has), its PID (workers share a Pod) and a random suffix (a restarted process is new)."""
    host = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{host}_{os.getpid()}_{secrets.token_hex(3)}"


def kube_config() -> KubeConfig:
    """In-cluster service-account credentials, else KUBECONFIG or ~/.kube/config."""
    try:
        return KubeConfig.from_env()
    except ConfigError as error:
        raise ConfigError(f"no Kubernetes credentials: not in a Pod, and {error}") from None


@dataclass
class Cluster:
    """The client plus what every feature needs: our namespace, identity and instruments."""

    client: AsyncClient
    namespace: str
    identity: str
    metrics: ClusterMetrics
    _reported: set[tuple[str, str]] = field(default_factory=set, repr=False)

    async def guarded(self, feature: str, what: str, call: Awaitable[T]) -> T | None:
        """Run an API call; on failure log (once per feature and kind of failure), count, return None."""
        try:
            return await call
        except ApiError as error:
            code = error.status.code or 0
            kind = "forbidden" if code == 403 else "not-found" if code == 404 else "conflict" if code == 409 \
                else f"http-{code}"
            message = error.status.message or str(error)
        except (httpx2.HTTPError, OSError) as error:
            kind, message = "unreachable", f"{type(error).__name__}: {error}"
        except ValueError as error:  # an answer we cannot use (a version older than we support)
            kind, message = "invalid-answer", str(error)
        self.metrics.api_errors.labels(feature=feature, reason=kind).inc()
        if (feature, kind) not in self._reported:
            self._reported.add((feature, kind))
            hint = " (the RBAC of manifests/overlays/cluster-aware grants it)" if kind == "forbidden" else ""
            log.warning(f"{feature}: cannot {what}{hint}", extra={"fields": {"reason": kind, "error": message[:300]}})
        return None

    def recovered(self, feature: str) -> None:
        """A call of ``feature`` worked again: its next failure is logged again."""
        self._reported = {key for key in self._reported if key[0] != feature}


def connect(namespace: str | None, metrics: ClusterMetrics, config: KubeConfig | None = None) -> Cluster:
    client = AsyncClient(config or kube_config(), field_manager=FIELD_MANAGER, timeout=httpx2.Timeout(10.0))
    return Cluster(client=client, namespace=install_namespace(namespace), identity=identity(), metrics=metrics)


def status_code(error: BaseException) -> int | None:
    return (error.status.code or None) if isinstance(error, ApiError) else None


async def raw_get(cluster: Cluster, path: str) -> Any:
    """GET a path lightkube has no resource for (/version), through the same authenticated client."""
    http = cluster.client._client._client  # lightkube's httpx client, already authenticated
    response = await http.get(path)
    response.raise_for_status()
    return response.json()
