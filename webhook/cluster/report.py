"""`sidecar-injector report`: the opted-in namespaces' Pods, grouped by owner, as
webhook.inventory sees them against the config the webhook uses (its ConfigMap, with the
Kubernetes version its Deployment is started with, detected when that is `auto`). Reads through
the API only (with the caller's credentials): namespaces, pods, replicasets, the webhook's
ConfigMap and Deployment, nodes under `auto`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lightkube import ApiError
from lightkube.resources.apps_v1 import Deployment, ReplicaSet
from lightkube.resources.core_v1 import ConfigMap, Namespace, Pod

from webhook import annotations as ann
from webhook import namespace_defaults
from webhook.cluster.client import Cluster, raw_get
from webhook.config import Config, load_config_text, override
from webhook.inventory import STATES, pod_state
from webhook.kubeversion import KubeVersion

CONFIGMAP = "sidecar-injector-config"
CONFIG_KEY = "config.yaml"
DEPLOYMENT = "sidecar-injector"
# A Pod that has finished cannot get a sidecar by a restart, and is not reported.
FINISHED = ("Succeeded", "Failed")


@dataclass
class Group:
    namespace: str
    owner: str  # Deployment/web, Job/report, Pod/bare...
    pods: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(pod["state"] for pod in self.pods)


@dataclass
class Report:
    config_hash: str
    kubernetes_version: str
    groups: list[Group]

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for group in self.groups:
            total.update(group.counts())
        return total

    def as_json(self) -> dict[str, Any]:
        return {"configHash": self.config_hash, "kubernetesVersion": self.kubernetes_version,
                "totals": {state: self.totals().get(state, 0) for state in STATES},
                "groups": [{"namespace": g.namespace, "owner": g.owner,
                            "counts": {s: g.counts().get(s, 0) for s in STATES}, "pods": g.pods}
                           for g in self.groups]}

    def as_table(self) -> str:
        header = ["NAMESPACE", "OWNER", "PODS", *(s.upper() for s in STATES)]
        rows = [[g.namespace, g.owner, str(len(g.pods)), *(str(g.counts().get(s, 0)) for s in STATES)]
                for g in self.groups]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
        details = [f"{g.namespace}/{p['name']} ({g.owner}): {p['state']}: {p['detail']}"
                   for g in self.groups for p in g.pods if p["state"] in ("stale", "tampered", "missing")]
        summary = ", ".join(f"{self.totals().get(s, 0)} {s}" for s in STATES)
        return "\n".join([*lines, "", *details, *([""] if details else []),
                          f"config {self.config_hash} (Kubernetes {self.kubernetes_version}): {summary}"]) + "\n"


# The serve flags that change the config in force (webhook.server.options.load_config), and their
# environment variables: read from the webhook's Deployment, so the hash compared is the webhook's.
CONFIG_FLAGS = {"--kubernetes-version": ("kubernetesVersion", "SIDECAR_INJECTOR_KUBERNETES_VERSION", str),
                "--deadline-seconds": ("deadlineSeconds", "SIDECAR_INJECTOR_DEADLINE_SECONDS", float)}


async def webhook_config(cluster: Cluster, version: str | None) -> Config:
    """The config the webhook uses: its ConfigMap with the flags its Deployment passes
    (--kubernetes-version, --deadline-seconds), ``version`` over the Deployment's when given;
    `auto` is detected as the webhook does."""
    client, namespace = cluster.client, cluster.namespace
    configmap = await client.get(ConfigMap, CONFIGMAP, namespace=namespace)
    config = load_config_text((configmap.data or {}).get(CONFIG_KEY, ""), f"ConfigMap {namespace}/{CONFIGMAP}")
    flags = await _deployment_flags(cluster)
    if version is not None:
        flags["kubernetesVersion"] = version
    for key in ("kubernetesVersion", "deadlineSeconds"):  # in load_config's order
        config = override(config, key, flags.get(key), f"the Deployment's {key}")
    return await with_detected_version(cluster, config)


async def with_detected_version(cluster: Cluster, config: Config) -> Config:
    """Under kubernetesVersion: auto, the version the webhook detects (the API server's, or the
    oldest kubelet's); otherwise the config as it is."""
    if not config.auto_version:
        return config
    return override(config, "kubernetesVersion", str(await _detected(cluster)), "the detected version")


async def _deployment_flags(cluster: Cluster) -> dict[str, Any]:
    try:
        deployment = await cluster.client.get(Deployment, DEPLOYMENT, namespace=cluster.namespace)
    except ApiError as error:
        if error.status.code == 404:
            return {}
        raise
    found: dict[str, Any] = {}
    for container in deployment.spec.template.spec.containers if deployment.spec else []:
        env = {e.name: e.value for e in container.env or [] if e.value is not None}
        args = list(container.args or [])
        for flag, (key, variable, kind) in CONFIG_FLAGS.items():
            if variable in env:
                found[key] = kind(env[variable])
            for index, arg in enumerate(args):  # the last one wins, as with argparse
                if arg.startswith(flag + "="):
                    found[key] = kind(arg.split("=", 1)[1])
                elif arg == flag and index + 1 < len(args):
                    found[key] = kind(args[index + 1])
    return found


async def _detected(cluster: Cluster) -> KubeVersion:
    from lightkube.resources.core_v1 import Node

    info = await raw_get(cluster, "/version")
    found = [KubeVersion.parse(str(info["gitVersion"]))]
    async for node in cluster.client.list(Node):
        if node.status and node.status.nodeInfo and node.status.nodeInfo.kubeletVersion:
            found.append(KubeVersion.parse(node.status.nodeInfo.kubeletVersion))
    return min(found)


async def gather(cluster: Cluster, config: Config, namespace: str | None) -> Report:
    """Every Pod of the opted-in namespaces (or of ``namespace``), classified and grouped."""
    client = cluster.client
    if namespace is not None:
        namespaces = [await client.get(Namespace, namespace)]
    else:
        namespaces = [ns async for ns in client.list(
            Namespace, labels={ann.NAMESPACE_LABEL: ann.NAMESPACE_LABEL_VALUE})]
    groups: dict[tuple[str, str], Group] = {}
    for ns in sorted(namespaces, key=lambda n: n.metadata.name):
        name = ns.metadata.name
        defaults = namespace_defaults.defaults_of(dict(ns.metadata.annotations or {})) or None
        deployments = {rs.metadata.name: _controller(rs.metadata.ownerReferences)
                       async for rs in client.list(ReplicaSet, namespace=name)}
        async for pod in client.list(Pod, namespace=name):
            if pod.status and pod.status.phase in FINISHED:
                continue
            data = pod.to_dict()
            state = pod_state(data, name, config, defaults)
            owner = _controller(pod.metadata.ownerReferences) or f"Pod/{pod.metadata.name}"
            kind, _, owner_name = owner.partition("/")
            if kind == "ReplicaSet" and deployments.get(owner_name):
                owner = deployments[owner_name]
            group = groups.setdefault((name, owner), Group(name, owner))
            group.pods.append({"name": pod.metadata.name, "state": state.state, "detail": state.detail})
    return Report(config.config_hash, str(config.kube_version), list(groups.values()))


def _controller(owners: Any) -> str | None:
    for owner in owners or []:
        if owner.controller:
            return f"{owner.kind}/{owner.name}"
    return None
