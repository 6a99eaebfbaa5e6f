"""Prometheus metrics of one app, in its own registry (never the process-global default one).

With several worker processes each worker counts in its own process, so a scrape that lands on
one worker would see a fraction of the truth. When PROMETHEUS_MULTIPROC_DIR is set (the
supervisor sets it for its workers) values live in per-process files in that directory and
every scrape aggregates all of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The API server's webhook latency buckets step at 5 ms and 25 ms; these resolve both sides of each.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Metrics:
    """The webhook's instruments; ``multiproc_dir`` set means values are aggregated from files."""

    registry: CollectorRegistry
    reviews: Counter
    review_duration: Histogram
    review_cache: Counter
    config_reloads: Counter
    certificate_reloads: Counter
    config_info: Gauge
    certificate_expiry: Gauge
    multiproc_dir: str | None
    # reviews' labelled children by (decision, reason): labels() validates and hashes on every call
    _review_children: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    def count_review(self, decision: str, reason: str) -> None:
        """reviews{decision, reason} += 1 (the labelled child is looked up once per pair)."""
        child = self._review_children.get((decision, reason))
        if child is None:
            child = self._review_children[(decision, reason)] = self.reviews.labels(decision=decision, reason=reason)
        child.inc()

    def count_cache(self, result: str) -> None:
        """review_cache{result=hit|miss} += 1."""
        key = ("cache", result)
        child = self._review_children.get(key)
        if child is None:
            child = self._review_children[key] = self.review_cache.labels(result=result)
        child.inc()


def create_metrics(multiproc_dir: str | None = None) -> Metrics:
    """Build fresh instruments; pass the multiprocess directory when workers share one."""
    registry = CollectorRegistry(auto_describe=True)
    return Metrics(
        registry=registry,
        reviews=Counter(
            "sidecar_injector_reviews",
            "AdmissionReviews answered, by decision (injected, skipped, denied, error, shadow) and reason.",
            ("decision", "reason"),
            registry=registry,
        ),
        review_duration=Histogram(
            "sidecar_injector_review_duration_seconds",
            "Time from request start to response sent for POST /mutate.",
            buckets=DURATION_BUCKETS,
            registry=registry,
        ),
        review_cache=Counter(
            "sidecar_injector_review_cache",
            "Reviews answered from the cache of identical reviews (hit) or worked out and offered to it "
            "(miss); reviews not looked up (while the cache idles, as no review repeats) or that it cannot "
            "hold (bad bodies) are not counted.",
            ("result",),
            registry=registry,
        ),
        config_reloads=Counter(
            "sidecar_injector_config_reloads",
            "Config file reloads after a change on disk, by result (success, error).",
            ("result",),
            registry=registry,
        ),
        certificate_reloads=Counter(
            "sidecar_injector_certificate_reloads",
            "Serving certificate reloads after a change on disk, by result (success, error).",
            ("result",),
            registry=registry,
        ),
        config_info=Gauge(
            "sidecar_injector_config_info",
            "1 for the hash of the config in use, 0 for configs used earlier.",
            ("hash",),
            registry=registry,
            multiprocess_mode="livemax",
        ),
        certificate_expiry=Gauge(
            "sidecar_injector_certificate_expiry_timestamp_seconds",
            "When the serving certificate in use expires (its notAfter), as a Unix timestamp.",
            registry=registry,
            multiprocess_mode="livemin",
        ),
        multiproc_dir=multiproc_dir,
    )


def multiproc_dir_from_env() -> str | None:
    """prometheus_client picks file-backed values at import time from this variable; follow it."""
    return os.environ.get(MULTIPROC_ENV) or None


def set_config_hash(metrics: Metrics, new_hash: str, old_hash: str | None) -> None:
    """Point config_info at the config now in use."""
    if old_hash is not None and old_hash != new_hash:
        metrics.config_info.labels(hash=old_hash).set(0)
    metrics.config_info.labels(hash=new_hash).set(1)


def exposition(metrics: Metrics) -> tuple[bytes, str]:
    """The text exposition and its content type; aggregated over all workers in multiprocess mode."""
    if metrics.multiproc_dir is None:
        return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics.multiproc_dir)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def worker_exited(metrics: Metrics) -> None:
    """Drop this process's live gauges so a stopped worker's config hash stops counting."""
    if metrics.multiproc_dir is not None:
        multiprocess.mark_process_dead(os.getpid(), metrics.multiproc_dir)  # type: ignore[no-untyped-call]
