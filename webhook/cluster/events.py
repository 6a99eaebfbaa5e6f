"""`--events`: a Kubernetes Event for every decision, so `kubectl describe rs NAME` says why a
Pod was or was not injected (Linkerd emits only successes; users of every injector ask why not).

``reviewed`` (the server's ReviewObserver) only puts the decision on a bounded queue and
returns: a full queue drops the Event and counts it, so a slow or unreachable API server never
delays a review. A task drains the queue and aggregates as client-go's recorder does: the same
reason and message for the same object within ``AGGREGATE_SECONDS`` raise the count and the
last time of one Event instead of creating another, written at most once per
``flush_seconds`` per Event (a Job creating a thousand Pods makes a handful of writes).

What an Event is on: the Pod's controller (ReplicaSet, Job, StatefulSet, DaemonSet, any owner
marked controller). A bare Pod gets it on itself: admission runs before the Pod exists, so its
uid is looked up when the Event is written (`kubectl describe pod` matches Events by uid); a
denied bare Pod never exists, and its Event names it without one (`kubectl get events
--field-selector involvedObject.name=NAME`). A bare Pod with only a generateName has no name
to put an Event on and gets none. Dry runs get none (the webhook configuration then declares
`sideEffects: NoneOnDryRun`), nor do shadow decisions (shadow mode tells the user nothing),
reinvocations that found everything in place, and requests that are not Pod creations.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field

import httpx2
from lightkube import ApiError
from lightkube.resources.core_v1 import Event, Pod
from lightkube.types import PatchType

from webhook.cluster.client import Cluster
from webhook.mutate import Outcome

log = logging.getLogger("webhook.cluster.events")
FEATURE = "events"
COMPONENT = "sidecar-injector"
AGGREGATE_SECONDS = 600.0  # client-go's aggregation window
REASONS = {"injected": ("Injected", "Normal"), "skipped": ("InjectionSkipped", "Normal"),
           "denied": ("InjectionDenied", "Warning"), "error": ("InjectionFailed", "Warning")}
QUIET = frozenset({"already-injected"})  # reinvocations that found everything in place


@dataclass(frozen=True)
class Target:
    """The object an Event is about."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str | None  # None: a bare Pod, whose uid is looked up when the Event is written


@dataclass
class Pending:
    reason: str
    type: str
    message: str
    count: int = 0  # occurrences not yet written
    first: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    last: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    name: str | None = None  # the Event written for it, once written
    written: int = 0  # the count it holds
    written_at: float = 0.0  # monotonic
    uid: str | None = None


def target_of(outcome: Outcome) -> Target | None:
    if outcome.owner is not None:
        api_version, kind, name, uid = outcome.owner
        return Target(api_version, kind, name, outcome.namespace, uid)
    if not outcome.name or outcome.name.endswith("*"):
        return None  # generateName only: no name to put an Event on
    return Target("v1", "Pod", outcome.name, outcome.namespace, None)


def event_of(outcome: Outcome) -> tuple[Target, str, str, str] | None:
    """(target, reason, type, message) of the Event a decision gets, or None for none."""
    if outcome.dry_run or outcome.kind != "Pod" or outcome.operation != "CREATE" or outcome.reason in QUIET:
        return None
    kind = REASONS.get(outcome.decision)
    target = target_of(outcome)
    if kind is None or target is None:
        return None
    # Not the Pod's name: a controller's Pods share one decision, aggregated into one Event.
    message = f"not injected: {outcome.message}" if outcome.decision == "skipped" else outcome.message
    return target, kind[0], kind[1], message[:1024]


class EventRecorder:
    """The server's ReviewObserver under --events."""

    def __init__(self, cluster: Cluster, queue_size: int = 1000, flush_seconds: float = 1.0) -> None:
        self.cluster = cluster
        self.queue: asyncio.Queue[tuple[Target, str, str, str]] = asyncio.Queue(queue_size)
        self.flush_seconds = flush_seconds
        self.pending: dict[tuple[Target, str, str], Pending] = {}

    def reviewed(self, outcome: Outcome) -> None:
        event = event_of(outcome)
        if event is None:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.cluster.metrics.events.labels(result="dropped").inc()

    def emit(self, target: Target, reason: str, type_: str, message: str) -> None:
        """An Event of the cluster code's own (an invalid namespace default), through the same queue."""
        try:
            self.queue.put_nowait((target, reason, type_, message))
        except asyncio.QueueFull:
            self.cluster.metrics.events.labels(result="dropped").inc()

    async def run(self) -> None:
        while True:
            await self._collect()
            await self.flush()

    async def _collect(self) -> None:
        """Take what is queued, waiting up to one flush interval for the first."""
        try:
            first = await asyncio.wait_for(self.queue.get(), self.flush_seconds)
        except asyncio.TimeoutError:
            return
        self._add(*first)
        while not self.queue.empty():
            self._add(*self.queue.get_nowait())

    def _add(self, target: Target, reason: str, type_: str, message: str) -> None:
        key = (target, reason, message)
        entry = self.pending.get(key)
        if entry is None:
            entry = self.pending[key] = Pending(reason, type_, message)
        entry.count += 1
        entry.last = dt.datetime.now(dt.timezone.utc)

    async def flush(self) -> None:
        """Write every Event with new occurrences (at most once per flush interval each)."""
        now = time.monotonic()
        for key, entry in list(self.pending.items()):
            if entry.count == 0:
                if now - entry.written_at > AGGREGATE_SECONDS:
                    del self.pending[key]  # past the window: the next one is a new Event
                continue
            if now - entry.written_at < self.flush_seconds:
                continue
            await self._write(key[0], entry)

    async def _write(self, target: Target, entry: Pending) -> None:
        client = self.cluster.client
        if target.uid is None and entry.uid is None and entry.reason != "InjectionDenied":
            entry.uid = await self._pod_uid(target)
        uid = target.uid or entry.uid
        if entry.name is not None:
            result = await self._patch(target, entry)
            if result != "gone":
                if result == "failed":
                    self.cluster.metrics.events.labels(result="failed").inc()
                    entry.written_at = time.monotonic()  # retried at the next flush
                else:
                    self._written(entry, "aggregated")
                return
            entry.name = None  # the Event expired or was deleted: a new one
        name = f"{target.name}.{time.time_ns():x}"
        involved = {"apiVersion": target.api_version, "kind": target.kind, "name": target.name,
                    "namespace": target.namespace, **({"uid": uid} if uid else {})}
        event = Event.from_dict({
            "metadata": {"name": name, "namespace": target.namespace},
            "involvedObject": involved, "reason": entry.reason, "type": entry.type, "message": entry.message,
            "count": entry.written + entry.count, "firstTimestamp": _time(entry.first),
            "lastTimestamp": _time(entry.last), "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT, "reportingInstance": self.cluster.identity})
        created = await self.cluster.guarded(FEATURE, f"create Events in namespace {target.namespace}",
                                             client.create(event, namespace=target.namespace))
        if created is None:
            self.cluster.metrics.events.labels(result="failed").inc()
            entry.written_at = time.monotonic()
            return
        entry.name = name
        self._written(entry, "created")

    def _written(self, entry: Pending, result: str) -> None:
        self.cluster.recovered(FEATURE)
        self.cluster.metrics.events.labels(result=result).inc(entry.count)
        entry.written += entry.count
        entry.count = 0
        entry.written_at = time.monotonic()

    async def _patch(self, target: Target, entry: Pending) -> str:
        """Raise the count of the Event written before: ok, gone (a 404) or failed (logged, counted)."""
        patch = {"count": entry.written + entry.count, "lastTimestamp": _time(entry.last)}
        try:
            await self.cluster.client.patch(Event, entry.name, patch, namespace=target.namespace,
                                            patch_type=PatchType.MERGE)
            return "ok"
        except ApiError as error:
            if error.status.code == 404:
                return "gone"
            failure: BaseException = error
        except (httpx2.HTTPError, OSError) as error:
            failure = error
        await self.cluster.guarded(FEATURE, "patch an Event", _raise(failure))
        return "failed"

    async def _pod_uid(self, target: Target) -> str | None:
        try:
            pod = await self.cluster.client.get(Pod, target.name, namespace=target.namespace)
        except (ApiError, httpx2.HTTPError, OSError):
            return None
        return pod.metadata.uid if pod.metadata else None


def _time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _raise(error: BaseException) -> None:
    raise error
