"""`--namespace-defaults`: a watched, cached list of the namespaces' annotations of ours, so a
review reads a namespace's defaults from memory (webhook.namespace_defaults), never by an API
call. All namespaces are watched, not only those labelled for injection: the webhook
configuration's namespaceSelector is the operator's to change, and only namespaces with
annotations of ours are kept. Until the first list is in, lookups say so (the profiles' settings apply, and the Pod's
warnings say that too). An invalid value is reported once per change of the namespace's
annotations: a warning line, a gauge, and a Warning Event on the namespace; a Pod relying on it
is denied naming the namespace (the core decides that).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from lightkube.resources.core_v1 import Namespace

from webhook import namespace_defaults
from webhook.cluster.client import Cluster
from webhook.cluster.events import EventRecorder, Target
from webhook.interface import ServerView

log = logging.getLogger("webhook.cluster.namespaces")
FEATURE = "namespace-defaults"


class NamespaceCache:
    def __init__(self, cluster: Cluster, server: ServerView, events: EventRecorder | None = None,
                 on_change: Callable[[], None] | None = None, retry_seconds: float = 5.0) -> None:
        self.cluster = cluster
        self.server = server
        self.events = events
        self.on_change = on_change
        self.retry_seconds = retry_seconds
        self.synced = False
        self._defaults: dict[str, dict[str, str]] = {}
        self._reported: dict[str, tuple[str, ...]] = {}

    def lookup(self, namespace: str) -> tuple[Mapping[str, str] | None, bool]:
        """(the namespace's defaults, or None; still loading)."""
        if not self.synced:
            return None, True
        return self._defaults.get(namespace), False

    async def run(self) -> None:
        self.cluster.metrics.namespace_cache_synced.set(0)
        while True:
            await self.cluster.guarded(FEATURE, "list and watch namespaces", self._list_and_watch())
            await asyncio.sleep(self.retry_seconds)

    async def _list_and_watch(self) -> None:
        listing = self.cluster.client.list(Namespace)
        fresh = {}
        async for namespace in listing:
            if values := _ours(namespace):
                fresh[namespace.metadata.name] = values
        changed = fresh != self._defaults or not self.synced
        self._defaults = fresh
        for name in set(self._reported) - set(fresh):
            self._clear(name)
        for name, values in fresh.items():
            self._check(name, values)
        if not self.synced:
            self.synced = True
            self.cluster.metrics.namespace_cache_synced.set(1)
            log.info("namespace defaults loaded", extra={"fields": {"namespaces": len(fresh)}})
        self.cluster.recovered(FEATURE)
        if changed:
            self._changed()
        async for kind, namespace in self.cluster.client.watch(Namespace, resource_version=listing.resourceVersion):
            name = namespace.metadata.name
            values = _ours(namespace)
            if kind == "DELETED" or not values:
                if self._defaults.pop(name, None) is not None:
                    self._clear(name)
                    self._changed()
            elif self._defaults.get(name) != values:
                self._defaults[name] = values
                self._check(name, values)
                self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _check(self, name: str, values: dict[str, str]) -> None:
        _, errors = namespace_defaults.read(name, values, self.server.config().profiles)
        messages = tuple(str(error) for error in errors)
        if self._reported.get(name, ()) == messages:
            return
        if not messages:
            self._clear(name)
            return
        self._reported[name] = messages
        self.cluster.metrics.namespace_defaults_invalid.labels(namespace=name).set(1)
        log.warning("invalid namespace defaults: Pods relying on them are denied",
                    extra={"fields": {"namespace": name, "problems": list(messages)}})
        if self.events is not None:
            self.events.emit(Target("v1", "Namespace", name, name, None), "InvalidNamespaceDefaults", "Warning",
                             "; ".join(messages)[:1024])

    def _clear(self, name: str) -> None:
        if self._reported.pop(name, None) is not None:
            self.cluster.metrics.namespace_defaults_invalid.labels(namespace=name).set(0)
            log.info("namespace defaults valid again", extra={"fields": {"namespace": name}})


def _ours(namespace: Namespace) -> dict[str, str]:
    return namespace_defaults.defaults_of(dict(namespace.metadata.annotations or {}))
