"""`kubernetesVersion: auto`: the version injection targets is the API server's, or the oldest
kubelet's among the Nodes if that is older (a native sidecar needs every kubelet to run it, not
only the API server to accept it), read again every ``interval_seconds``. Until it is read, or
while it cannot be, the config's kubernetesVersionFallback applies and a warning says so; a
version read once stays in force through later failures (it was true, and a cluster is not
downgraded under a running webhook). Shown in the log and in /metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from lightkube.resources.core_v1 import Node

from webhook.cluster.client import Cluster, raw_get
from webhook.interface import ServerView
from webhook.kubeversion import KubeVersion

log = logging.getLogger("webhook.cluster.versions")
FEATURE = "kubernetes-version"


class VersionDetector:
    def __init__(self, cluster: Cluster, server: ServerView, on_change: Callable[[], None] | None = None,
                 interval_seconds: float = 300.0, retry_seconds: float = 10.0) -> None:
        self.cluster = cluster
        self.server = server
        self.on_change = on_change
        self.interval = interval_seconds
        self.retry = retry_seconds
        self.version: KubeVersion | None = None
        self._shown: tuple[str, str] | None = None  # (version, source) the gauge shows

    async def run(self) -> None:
        warned = False
        while True:
            if not self.server.config().auto_version:
                await asyncio.sleep(self.retry)
                continue
            found = await self.cluster.guarded(FEATURE, "read the API server's and the Nodes' versions", self._read())
            if found is None:
                if self.version is None and not warned:
                    fallback = self.server.config().kube_version
                    log.warning("kubernetesVersion: auto, but the version cannot be read: the fallback applies",
                                extra={"fields": {"fallback": str(fallback)}})
                    self._show(fallback, "fallback")
                    warned = True
                await asyncio.sleep(self.retry)
                continue
            self.cluster.recovered(FEATURE)
            version, server, oldest = found
            if version != self.version:
                log.info("kubernetes version detected", extra={"fields": {
                    "version": str(version), "api_server": str(server), "oldest_kubelet": str(oldest or "none")}})
                self.version = version
                self._show(version, "detected")
                if self.on_change is not None:
                    self.on_change()
            await asyncio.sleep(self.interval)

    def _show(self, version: KubeVersion, source: str) -> None:
        gauge = self.cluster.metrics.kubernetes_version
        if self._shown is not None:
            gauge.labels(version=self._shown[0], source=self._shown[1]).set(0)
        self._shown = (str(version), source)
        gauge.labels(version=self._shown[0], source=source).set(1)

    async def _read(self) -> tuple[KubeVersion, KubeVersion, KubeVersion | None]:
        info = await raw_get(self.cluster, "/version")
        server = KubeVersion.parse(str(info.get("gitVersion") or f"{info['major']}.{info['minor']}".replace("+", "")))
        kubelets = []
        async for node in self.cluster.client.list(Node):
            text = node.status.nodeInfo.kubeletVersion if node.status and node.status.nodeInfo else None
            if text:
                kubelets.append(KubeVersion.parse(text))
        oldest = min(kubelets) if kubelets else None
        return min(server, oldest) if oldest else server, server, oldest
