"""Injection reversed, from what the status annotation records (pure).

``sidecar-injector uninject`` (like ``istioctl x kube-uninject``, which users report does not
restore probes) takes away exactly what injection added: the containers, init containers and
volumes it names, what it added to the Pod's own containers (mounts, env, lifecycle hooks,
probes, and the keys those containers did not have), the grace period as it was, the
shareProcessNamespace it set, the lists and maps it created, and the status itself. A Pod
without our status is left as it is.

What someone else changed since is no longer ours: given ``reference``, the Pod as injection
would make it now (``reinjected``), a piece that no longer holds what injection put there
(more fields, such as the API server's defaults, are fine) is left in place with a warning,
and so is one already gone. Without a reference (another config injected the Pod), every
piece the status names is taken away by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.annotations import STATUS
from webhook.config import Config
from webhook.errors import Denied, LimitExceeded, shown
from webhook.inject import inject
from webhook.jsontree import contains, copy_tree, is_map
from webhook.policy import PodContext, decide

Obj = dict[str, Any]
_APP_KINDS = {"volumeMounts": "mountPath", "env": "name"}  # list kinds, by the key that tells items apart


@dataclass
class Uninjection:
    """The Pod without what injection added; ``changed`` is False for a Pod without our status."""

    pod: Obj
    changed: bool
    warnings: list[str] = field(default_factory=list)


def read_status(pod: Mapping[str, Any]) -> Obj | None:
    """The status annotation's record, or None when the Pod has none that can be read.

    Read means of the shape injection writes (README: the status annotation): the names are
    lists of strings, ``native`` and ``shareProcessNamespace`` booleans, ``appContainers`` a map
    of records whose kinds are lists of strings (``probes`` only probe names), the grace period
    a pair of whole seconds. A record another tool forged or garbled (``{"containers": 5}``, a
    string where a list belongs) is unreadable as a whole, never half read: the Pod is still
    "already injected" (the annotation is there), and repair and uninject leave it alone and
    say so. Keys it does not know are ignored (later versions only ever add fields)."""
    metadata = pod.get("metadata")
    annotations = metadata.get("annotations") if is_map(metadata) else None
    text = annotations.get(STATUS) if is_map(annotations) else None
    if not isinstance(text, str):
        return None
    try:
        status = orjson.loads(text)
    except orjson.JSONDecodeError:  # not JSON, nested beyond 1024 levels, an integer beyond 64 bits
        return None
    return status if type(status) is dict and _readable(status) else None


_NAME_LISTS = ("profiles", "initContainers", "containers", "volumes", "created")
_FLAGS = ("native", "shareProcessNamespace")
_APP_RECORD_LISTS = ("volumeMounts", "env", "lifecycle", "probes", "created")
_PROBES = frozenset({"readinessProbe", "livenessProbe", "startupProbe"})


def _strings(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


def _seconds(value: Any) -> bool:
    return type(value) is int and value >= 0


def _readable(status: Mapping[str, Any]) -> bool:
    if not all(_strings(status[key]) for key in _NAME_LISTS if key in status):
        return False
    if not all(type(status[key]) is bool for key in _FLAGS if key in status):
        return False
    if "configHash" in status and type(status["configHash"]) is not str:
        return False
    grace = status.get("terminationGracePeriodSeconds", {"set": 0})
    if type(grace) is not dict or not _seconds(grace.get("set")) or not (
            grace.get("original") is None or _seconds(grace["original"])):
        return False
    records = status.get("appContainers", {})
    return type(records) is dict and all(
        type(record) is dict and all(_strings(record[kind]) for kind in _APP_RECORD_LISTS if kind in record)
        and _PROBES.issuperset(record.get("probes", ())) for record in records.values())


def reinjected(pod: Mapping[str, Any], context: PodContext, config: Config) -> Obj | None:
    """The Pod as this config would inject it now, from the Pod without our additions; None when
    another config injected it (its hash differs) or this one would not inject it."""
    status = read_status(pod)
    if status is None or status.get("configHash") != config.config_hash:
        return None
    return injected_anew(pod, context, config)


def injected_anew(pod: Mapping[str, Any], context: PodContext, config: Config) -> Obj | None:
    """The Pod without our additions injected again by this config, or None if it would not be."""
    stripped = uninject(pod).pod
    try:
        decision = decide(stripped, context, config)
    except (Denied, LimitExceeded):
        return None
    if not decision.inject or decision.settings is None:
        return None
    result = inject(stripped, decision.settings)
    return result.pod if result.changed else None


def _by_name(items: Any) -> dict[str, Obj]:
    return {item["name"]: item for item in items if is_map(item) and type(item.get("name")) is str} \
        if isinstance(items, list) else {}


class _Undo:
    """One uninjection: the Pod's copy being taken apart, the reference, the warnings."""

    def __init__(self, pod: Mapping[str, Any], reference: Mapping[str, Any] | None) -> None:
        self.pod: Obj = copy_tree(dict(pod))
        spec = self.pod.get("spec")
        self.spec: Obj = spec if is_map(spec) else {}
        self.reference: Mapping[str, Any] = (reference.get("spec") or {}) if reference is not None else {}
        self.checked = reference is not None
        self.warnings: list[str] = []

    def ours(self, what: str, actual: Any, expected: Any) -> bool:
        """Whether a piece is still as injection left it (warns when it is not, or is gone)."""
        if actual is None:
            self.warnings.append(f"{what} was already removed")
            return False
        if self.checked and expected is not None and not contains(actual, expected):
            self.warnings.append(f"{what} was changed since injection; left in place")
            return False
        return True

    def remove_named(self, key: str, names: list[str], what: str) -> None:
        items = self.spec.get(key)
        present = _by_name(items)
        expected = _by_name(self.reference.get(key))
        gone = {name for name in names if self.ours(f"{what} {name}", present.get(name), expected.get(name))}
        if key == "volumes":
            gone -= self.still_mounted(gone)
        if gone:
            self.spec[key] = [item for item in items if not (is_map(item) and item.get("name") in gone)]

    def still_mounted(self, volumes: set[str]) -> set[str]:
        """Those of ``volumes`` a container left in place still mounts (one someone changed, so no
        longer ours, or one of the Pod's own): taking them away would give an invalid Pod."""
        kept: set[str] = set()
        for key in ("initContainers", "containers", "ephemeralContainers"):
            for container in _by_name(self.spec.get(key)).values():
                for kind in ("volumeMounts", "volumeDevices"):
                    mounts = container.get(kind)
                    for mount in mounts if isinstance(mounts, list) else ():
                        name = mount.get("name") if is_map(mount) else None
                        if name in volumes and name not in kept:
                            kept.add(name)
                            self.warnings.append(f"volume {name} is still mounted by container "
                                                 f"{container['name']}; left in place")
        return kept

    def app_container(self, name: str, added: Mapping[str, Any]) -> None:
        container = _by_name(self.spec.get("containers")).get(name)
        if container is None:
            self.warnings.append(f"container {name} is gone; nothing to take away from it")
            return
        expected = _by_name(self.reference.get("containers")).get(name) or {}
        for kind, key in _APP_KINDS.items():
            items = container.get(kind)
            for ident in added.get(kind, ()):
                found = next((i for i in items or () if is_map(i) and i.get(key) == ident), None)
                wanted = next((i for i in expected.get(kind) or () if is_map(i) and i.get(key) == ident), None)
                if self.ours(f"container {name}: {kind} {ident}", found, wanted):
                    container[kind] = [i for i in items if i is not found]
                    items = container[kind]
        lifecycle = container.get("lifecycle")
        for hook in added.get("lifecycle", ()):
            found = lifecycle.get(hook) if is_map(lifecycle) else None
            if self.ours(f"container {name}: {hook} hook", found, (expected.get("lifecycle") or {}).get(hook)):
                del lifecycle[hook]  # type: ignore[union-attr]
        for probe in added.get("probes", ()):
            if self.ours(f"container {name}: {probe}", container.get(probe), expected.get(probe)):
                del container[probe]
        for key in added.get("created", ()):
            if key in container and not container[key]:
                del container[key]

    def pod_level(self, status: Mapping[str, Any]) -> None:
        created = set(status.get("created") or ())
        grace = status.get("terminationGracePeriodSeconds")
        if is_map(grace):
            current = self.spec.get("terminationGracePeriodSeconds")
            if current != grace["set"]:
                self.warnings.append(f"terminationGracePeriodSeconds is {shown(current)}, not the {grace['set']} "
                                     "injection set; left in place")
            elif "spec.terminationGracePeriodSeconds" in created:
                del self.spec["terminationGracePeriodSeconds"]
            else:
                self.spec["terminationGracePeriodSeconds"] = grace["original"]
        if status.get("shareProcessNamespace") is True:
            if self.spec.get("shareProcessNamespace") is True:
                del self.spec["shareProcessNamespace"]
            else:
                self.warnings.append("shareProcessNamespace was changed since injection; left in place")
        for key in ("initContainers", "volumes"):
            if f"spec.{key}" in created and self.spec.get(key) == []:
                del self.spec[key]
        metadata = self.pod["metadata"]
        annotations = metadata["annotations"]
        del annotations[STATUS]
        if "metadata.annotations" in created and not annotations:
            del metadata["annotations"]
        if "metadata" in created and not metadata:
            del self.pod["metadata"]


def uninject(pod: Mapping[str, Any], reference: Mapping[str, Any] | None = None) -> Uninjection:
    """The Pod without what the status annotation says injection added (see the module's doc)."""
    status = read_status(pod)
    if status is None:
        metadata = pod.get("metadata")
        present = is_map(metadata) and is_map(metadata.get("annotations")) and STATUS in metadata["annotations"]
        return Uninjection(dict(pod), False, [f"{STATUS} cannot be read; left as it is"] if present else [])
    undo = _Undo(pod, reference)
    undo.remove_named("initContainers", status.get("initContainers", []), "init container")
    undo.remove_named("initContainers" if status.get("native") else "containers", status.get("containers", []),
                      "sidecar")
    for name, record in status.get("appContainers", {}).items():
        undo.app_container(name, record)
    undo.remove_named("volumes", status.get("volumes", []), "volume")  # once the mounts that go are gone
    undo.pod_level(status)
    return Uninjection(undo.pod, True, undo.warnings)
