"""The cluster code's Prometheus instruments, in the server's registry (handed over through
``webhook.interface.ServerView``), so /metrics shows them beside the review counters. With
several workers prometheus_client keeps their values in the shared multiprocess directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge


@dataclass(frozen=True)
class ClusterMetrics:
    leader: Gauge
    api_errors: Counter
    events: Counter
    namespace_cache_synced: Gauge
    namespace_defaults_invalid: Gauge
    kubernetes_version: Gauge


def create_cluster_metrics(registry: Any) -> ClusterMetrics:
    return ClusterMetrics(
        leader=Gauge("sidecar_injector_leader", "1 while this process holds the Lease (auto-TLS's only writer), else 0.",
                     ("lease",), registry=registry, multiprocess_mode="livemax"),
        api_errors=Counter("sidecar_injector_cluster_api_errors",
                           "Kubernetes API calls of the cluster-aware features that failed, by feature and reason "
                           "(forbidden: a missing RBAC permission; unreachable; http-CODE). No review waits on them.",
                           ("feature", "reason"), registry=registry),
        events=Counter("sidecar_injector_events",
                       "Kubernetes Events for decisions, by result: created, aggregated (an existing Event's count "
                       "raised), dropped (the bounded queue was full), failed (the API refused or was unreachable).",
                       ("result",), registry=registry),
        namespace_cache_synced=Gauge("sidecar_injector_namespace_cache_synced",
                                     "1 once the watched list of namespaces is synced (namespace defaults apply).",
                                     registry=registry, multiprocess_mode="livemin"),
        namespace_defaults_invalid=Gauge("sidecar_injector_namespace_defaults_invalid",
                                         "1 for a namespace whose sidecar-injector.io annotations are invalid.",
                                         ("namespace",), registry=registry, multiprocess_mode="livemax"),
        kubernetes_version=Gauge("sidecar_injector_kubernetes_version_info",
                                 "1 for the Kubernetes version injection targets (kubernetesVersion: auto), by source "
                                 "(detected: the API server and the oldest kubelet; fallback: the API could not be read).",
                                 ("version", "source"), registry=registry, multiprocess_mode="livemax"),
    )
