"""Find the Pod templates inside Kubernetes objects, so manifests can be injected offline.

Pure functions over already-parsed objects (dicts): no I/O, no state. An offline
``sidecar-injector inject -f FILE`` walks every document with :func:`iter_pod_templates`,
mutates each template as the webhook would mutate the Pods created from it, and writes
the result back with :func:`replace_template`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Where each workload kind keeps the Pod (template) it runs: a tuple of keys into the
# object. The empty path means the object itself is the Pod.
POD_TEMPLATE_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

# The kind of the object that owns the Pods at run time (what a webhook sees in the
# Pod's ownerReferences): a Deployment's Pods belong to a ReplicaSet, a CronJob's to a Job.
OWNER_KINDS: Mapping[str, str] = {
    "Pod": "",
    "Deployment": "ReplicaSet",
    "StatefulSet": "StatefulSet",
    "DaemonSet": "DaemonSet",
    "ReplicaSet": "ReplicaSet",
    "ReplicationController": "ReplicationController",
    "Job": "Job",
    "CronJob": "Job",
}

# ``kubectl get -o yaml`` of several objects prints ``kind: List`` with ``items``;
# typed lists (``DeploymentList``…) have the same shape, so any kind ending in "List" recurses.
LIST_KIND = "List"

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class PodTemplateRef:
    """One Pod template found in an object, with enough context to inject and write it back."""

    kind: str
    """Kind of the workload carrying the template (never "List")."""
    name: str
    """The workload's metadata.name, or "" when absent."""
    namespace: str
    """The workload's metadata.namespace, or "" when absent."""
    path: Path
    """Keys (and list indices, inside a List) from the top-level object to the template."""
    template: dict[str, Any]
    """The dict at ``path``: the Pod itself for a bare Pod, else the template (metadata + spec)."""
    owner_kind: str
    """Kind that will own the Pods at run time; "" for a bare Pod."""


def _is_list_kind(kind: str) -> bool:
    return kind == LIST_KIND or (kind.endswith("List") and kind not in POD_TEMPLATE_PATHS)


def _metadata_str(obj: Mapping[str, Any], key: str) -> str:
    meta = obj.get("metadata")
    value = meta.get(key) if isinstance(meta, Mapping) else None
    return value if isinstance(value, str) else ""


def _walk(obj: Any, prefix: Path) -> Iterator[PodTemplateRef]:
    if not isinstance(obj, dict):
        return
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        return
    if _is_list_kind(kind):
        items = obj.get("items")
        if isinstance(items, list):
            for i, item in enumerate(items):
                yield from _walk(item, prefix + ("items", i))
        return
    rel = POD_TEMPLATE_PATHS.get(kind)
    if rel is None:
        return
    node: Any = obj
    for key in rel:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return  # malformed workload (no template): nothing to inject
    yield PodTemplateRef(
        kind=kind,
        name=_metadata_str(obj, "name"),
        namespace=_metadata_str(obj, "namespace"),
        path=prefix + rel,
        template=node,
        owner_kind=OWNER_KINDS[kind],
    )


def iter_pod_templates(obj: Any) -> Iterator[PodTemplateRef]:
    """Yield every Pod template in ``obj`` (a parsed manifest), recursing into Lists.

    Anything that is not a dict, has no kind, or is of a kind without Pods yields nothing,
    so callers can feed every document of a multi-document file without filtering.
    The ``template`` of each ref is the very dict inside ``obj`` (not a copy).
    """
    yield from _walk(obj, ())


def replace_template(obj: dict[str, Any], path: Path, new_template: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of ``obj`` with the dict at ``path`` replaced by ``new_template``.

    Neither ``obj`` nor ``new_template`` is mutated or shared with the result, so the
    caller can keep comparing the original against the injected output.
    Raises KeyError when ``path`` does not lead to an existing template.
    """
    if not path:
        return copy.deepcopy(new_template)
    result = copy.deepcopy(obj)
    parent: Any = result
    for depth, key in enumerate(path[:-1]):
        try:
            parent = parent[key]
        except (KeyError, IndexError, TypeError):
            raise KeyError(f"path {path!r} does not exist in the object (failed at {path[: depth + 1]!r})") from None
    last = path[-1]
    try:
        parent[last]  # the template must already exist: we replace, never create
    except (KeyError, IndexError, TypeError):
        raise KeyError(f"path {path!r} does not exist in the object") from None
    parent[last] = copy.deepcopy(new_template)
    return result
