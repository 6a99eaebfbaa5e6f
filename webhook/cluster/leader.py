"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

One replica holds the Lease and is the only writer of what must have one writer (auto-TLS's
Secret and the webhook's caBundle: Vault's injector had replicas fight over it). The holder
renews every ``renew_seconds``; another replica takes over once it has seen the Lease's record
unchanged for ``duration_seconds`` (measured on its own clock, so clock skew between nodes does
not matter) — after a holder is killed, within one duration plus a retry. Updates go through
the API server's optimistic concurrency (resourceVersion), so two candidates never both win.
A holder that cannot renew within the duration stops acting as leader before anyone else can
take over. On a clean stop the holder releases the Lease, and the next candidate takes it at
its next retry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from lightkube import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from webhook.cluster.client import Cluster

log = logging.getLogger("webhook.cluster.leader")
FEATURE = "leader-election"
_MISSING = object()  # _get(): the Lease does not exist yet


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class LeaderElector:
    """Campaigns for one Lease; ``is_leader`` says whether this process may write now."""

    def __init__(self, cluster: Cluster, name: str, duration_seconds: float = 15.0, renew_seconds: float = 5.0,
                 retry_seconds: float = 2.0, on_change: Callable[[bool], None] | None = None) -> None:
        self.cluster = cluster
        self.name = name
        self.duration = duration_seconds
        self.renew = renew_seconds
        self.retry = retry_seconds
        self.on_change = on_change
        self._leader = False
        self._renewed_at = 0.0  # monotonic time of our last successful renewal
        self._observed: tuple[str | None, str | None] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self.became_leader = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        """Leader, and renewed recently enough that nobody else can have taken over."""
        return self._leader and time.monotonic() - self._renewed_at < self.duration

    def _set(self, leader: bool) -> None:
        if leader != self._leader:
            self._leader = leader
            self.cluster.metrics.leader.labels(lease=self.name).set(1 if leader else 0)
            log.info("leadership acquired" if leader else "leadership lost",
                     extra={"fields": {"lease": self.name, "identity": self.cluster.identity}})
            if leader:
                self.became_leader.set()
            else:
                self.became_leader.clear()
            if self.on_change is not None:
                self.on_change(leader)

    async def run(self) -> None:
        self.cluster.metrics.leader.labels(lease=self.name).set(0)
        while True:
            await self._attempt()
            if self._leader and not self.is_leader:
                self._set(False)  # could not renew in time: someone else may hold it by now
            await asyncio.sleep(self.renew if self._leader else self.retry)

    async def _attempt(self) -> None:
        cluster = self.cluster
        lease = await cluster.guarded(FEATURE, f"get Lease {cluster.namespace}/{self.name}",
                                      self._get())
        if lease is None:
            return
        if lease is _MISSING:
            created = await cluster.guarded(FEATURE, f"create Lease {cluster.namespace}/{self.name}",
                                            cluster.client.create(self._new_lease(transitions=0)))
            self._won(created is not None)
            return
        spec = lease.spec or LeaseSpec()
        record = (spec.holderIdentity, spec.renewTime.isoformat() if spec.renewTime else None)
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        mine = spec.holderIdentity == cluster.identity
        free = not spec.holderIdentity
        expired = time.monotonic() - self._observed_at >= (spec.leaseDurationSeconds or self.duration)
        if not (mine or free or expired):
            self._set(False)
            return
        now = _now()
        spec.renewTime = now
        spec.leaseDurationSeconds = int(self.duration)
        if not mine:
            spec.holderIdentity = cluster.identity
            spec.acquireTime = now
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
        lease.spec = spec
        replaced = await cluster.guarded(FEATURE, f"update Lease {cluster.namespace}/{self.name}",
                                         cluster.client.replace(lease))
        self._won(replaced is not None)

    def _won(self, won: bool) -> None:
        if won:
            self._renewed_at = time.monotonic()
            self.cluster.recovered(FEATURE)
            self._set(True)

    async def _get(self) -> Lease | object:
        try:
            return await self.cluster.client.get(Lease, self.name, namespace=self.cluster.namespace)
        except ApiError as error:
            if error.status.code == 404:
                return _MISSING
            raise

    def _new_lease(self, transitions: int) -> Lease:
        now = _now()
        return Lease(metadata=ObjectMeta(name=self.name, namespace=self.cluster.namespace,
                                         labels={"app.kubernetes.io/name": "sidecar-injector"}),
                     spec=LeaseSpec(holderIdentity=self.cluster.identity, leaseDurationSeconds=int(self.duration),
                                    acquireTime=now, renewTime=now, leaseTransitions=transitions))

    async def release(self) -> None:
        """On a clean stop: give the Lease up so the next candidate need not wait out the duration."""
        if not self.is_leader:
            return
        self._set(False)
        lease = await self.cluster.guarded(FEATURE, "get Lease to release it", self._get())
        if isinstance(lease, Lease) and lease.spec and lease.spec.holderIdentity == self.cluster.identity:
            lease.spec.holderIdentity = None
            lease.spec.leaseDurationSeconds = 1
            await self.cluster.guarded(FEATURE, "release Lease", self.cluster.client.replace(lease))

