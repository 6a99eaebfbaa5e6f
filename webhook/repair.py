"""Repair on reinvocation: what of ours another webhook removed is added again (pure).

With ``reinvocationPolicy: IfNeeded`` a later webhook may change the Pod before we are called
again, and some remove other injectors' containers (Istio's is reported to). On a Pod with our
status annotation, each container, init container and volume the status names is looked for:
one that is gone is added again as the config injects it now, with a warning that another
webhook removed it, and with the volumes it mounts that the Pod lacks (the status records
them, so uninject takes them away too); one that is there but no longer holds what injection put there (more
fields, such as the API server's defaults, are fine) is left as it is, with a warning and an
audit annotation. When nothing is missing, nothing is added: injection stays idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.annotations import STATUS
from webhook.config import Config
from webhook.errors import Denied, LimitExceeded
from webhook.inject import inject
from webhook.injection.containers import pod_budget
from webhook.jsontree import contains, copy_tree, is_map
from webhook.patch import Op, add, escape
from webhook.policy import PodContext, decide
from webhook.uninject import read_status

Obj = dict[str, Any]


@dataclass
class Repair:
    """The ops that add back what was removed, the Pod they give, and what to tell the user."""

    ops: list[Op] = field(default_factory=list)
    pod: Obj | None = None
    restored: list[str] = field(default_factory=list)  # "sidecar proxy", "volume podinfo"
    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # the spec lists repair created ("spec.volumes")


def _names(items: Any) -> list[str]:
    return [i.get("name") for i in items if is_map(i)] if isinstance(items, list) else []


def repair(pod: Mapping[str, Any], context: PodContext, config: Config) -> Repair:
    """What of ours is missing (added again) or changed (reported) in a Pod with our status."""
    result = Repair()
    status = read_status(pod)
    if status is None:  # the annotation is there (the Pod is already injected) but unreadable
        result.warnings.append(f"{STATUS} cannot be read; nothing is repaired")
        return result
    compare = status.get("configHash") == config.config_hash  # else the config's pieces may differ anyway
    spec: Obj = dict(pod.get("spec") or {})
    recorded: list[str] = status.get("initContainers", [])
    sidecars: list[str] = status.get("containers", [])
    groups = [("initContainers", "init container", recorded)]
    groups.append(("initContainers", "sidecar", sidecars) if status.get("native") else ("containers", "sidecar", sidecars))
    groups.append(("volumes", "volume", status.get("volumes", [])))
    present = {key: set(_names(spec.get(key))) for key in ("initContainers", "containers", "volumes")}
    if not compare and all(name in present[key] for key, _, names in groups for name in names):
        return result  # nothing missing, nothing to compare with: the fresh injection is not needed
    fresh = _injected_now(pod, groups, context, config)
    front = {"initContainers": recorded + (sidecars if status.get("native") else []), "containers": sidecars}
    restored: list[Obj] = []
    for key, what, names in groups:
        wanted = fresh.get(key, {})
        for name in names:
            current = next((i for i in spec.get(key) or () if is_map(i) and i.get("name") == name), None)
            if current is not None:
                if compare and name in wanted and not contains(current, wanted[name]):
                    result.changed.append(f"{what} {name}")
                    result.warnings.append(f"{what} {name} was changed by another webhook; left as it is")
                continue
            if key != "volumes" and name in _container_names(spec):
                result.changed.append(f"{what} {name}")
                result.warnings.append(f"{what} {name} was moved by another webhook; left as it is")
                continue
            if name not in wanted:
                result.warnings.append(f"{what} {name} was removed by another webhook; the config no longer injects it")
                continue
            item = copy_tree(wanted[name])  # the fresh injection shares the plan's objects
            _put_back(result, spec, key, name, item, front.get(key))
            result.restored.append(f"{what} {name}")
            result.warnings.append(f"{what} {name} was removed by another webhook; added again")
            if key != "volumes":
                restored.append(item)
    added = _volumes_mounted(result, spec, restored, fresh)
    if result.ops and (added or result.created):
        result.ops.append(_status_op(status, added, result.created))
    if result.ops:
        result.pod = {**pod, "spec": spec}
    return result


# Bound of the per-settings memo of what injection would add now (see _injected_now).
FRESH_MEMO_SIZE = 64
_KINDS = ("initContainers", "containers", "volumes")


def _injected_now(pod: Mapping[str, Any], groups: list[tuple[str, str, list[str]]], context: PodContext,
                  config: Config) -> dict[str, dict[str, Obj]]:
    """Per spec list, by name, the containers and volumes this config would inject now into the
    Pod without the pieces the status names and without the status (read only: they share the
    plan's objects).

    Lighter than uninject: the Pod's own containers keep what injection added to them, which
    changes none of these pieces: they depend on the settings, the names the Pod's own
    containers and volumes take, and its pod-level resources alone. So they are kept per
    Settings (which resolve() memoizes) for those, and a reinvocation with nothing missing
    costs a decide(), not an injection."""
    ours: dict[str, set[str]] = {}
    for key, _, names in groups:
        ours.setdefault(key, set()).update(names)
    metadata = pod["metadata"]
    annotations = {key: value for key, value in metadata["annotations"].items() if key != STATUS}
    spec = dict(pod.get("spec") or {})
    for key, names in ours.items():
        items = spec.get(key)
        if isinstance(items, list):
            spec[key] = [item for item in items if not (is_map(item) and item.get("name") in names)]
    stripped = {**pod, "metadata": {**metadata, "annotations": annotations}, "spec": spec}
    try:
        decision = decide(stripped, context, config)
    except (Denied, LimitExceeded):
        return {}
    if not decision.inject or decision.settings is None:
        return {}
    taken = frozenset(_names(spec.get("initContainers")) + _names(spec.get("containers"))
                      + _names(spec.get("ephemeralContainers")))
    key = (taken, frozenset(_names(spec.get("volumes"))), pod_budget(spec))
    memo = decision.settings.plan_cache.setdefault("repair", {})
    found: dict[str, dict[str, Obj]] | None = memo.get(key)
    if found is None:
        result = inject(stripped, decision.settings, fresh_copies=False)
        added = {*result.status["initContainers"], *result.status["containers"], *result.status["volumes"]}
        new_spec = result.pod.get("spec") or {} if result.changed else {}
        found = {kind: {item["name"]: item for item in new_spec.get(kind) or ()
                        if is_map(item) and item.get("name") in added} for kind in _KINDS}
        if len(memo) >= FRESH_MEMO_SIZE:
            memo.clear()
        memo[key] = found
    return found


def _container_names(spec: Mapping[str, Any]) -> set[str]:
    return {name for key in ("initContainers", "containers", "ephemeralContainers") for name in _names(spec.get(key))}


def _volumes_mounted(result: Repair, spec: Obj, restored: list[Obj], fresh: Mapping[str, Mapping[str, Obj]]) -> list[str]:
    """The volumes a restored container mounts that the Pod lacks, added from the fresh injection.

    A restored container is the one the config injects now, while the status names the volumes
    injection added then: a mount the config has gained since (or a forged status that names
    the container alone) would name a volume the Pod does not have, and the API server would
    refuse the Pod. Returns the names added, which the status then records too."""
    have = set(_names(spec.get("volumes")))
    wanted = fresh.get("volumes", {})
    added: list[str] = []
    for container in restored:
        for mount in container.get("volumeMounts") or ():
            name = mount.get("name") if is_map(mount) else None
            if name in wanted and name not in have:
                _put_back(result, spec, "volumes", name, copy_tree(wanted[name]), None)
                have.add(name)
                added.append(name)
                result.restored.append(f"volume {name}")
                result.warnings.append(f"volume {name} added: the restored {container['name']} mounts it")
    return added


def _status_op(status: Mapping[str, Any], volumes: list[str], created: list[str]) -> Op:
    """The status annotation recording what repair added beyond what it names (volumes, the lists
    it created), so that uninject takes that away too."""
    record = dict(status)
    if volumes:
        record["volumes"] = [*status.get("volumes", []), *volumes]
    if created:
        record["created"] = [*status.get("created", []), *(key for key in created if key not in status.get("created", []))]
    text = json.dumps(record, separators=(",", ":"))
    return {"op": "replace", "path": f"/metadata/annotations/{escape(STATUS)}", "value": text}


def _put_back(result: Repair, spec: Obj, key: str, name: str, item: Obj, front: list[str] | None) -> None:
    """Add ``item`` to ``spec[key]`` where injection had it: among ours in front, in order (volumes last)."""
    items = spec.get(key)
    if not isinstance(items, list):
        spec[key] = [item]
        result.ops.append(add(f"/spec/{key}", [item]))
        if key != "containers":
            result.created.append(f"spec.{key}")
        return
    if front is None:
        index = len(items)
    else:
        before = set(front[: front.index(name)])
        index = sum(1 for present in _names(items)[: len(front)] if present in before)
    spec[key] = [*items[:index], item, *items[index:]]
    result.ops.append(add(f"/spec/{key}/{index}", item))


def restored_audit(result: Repair) -> Mapping[str, str]:
    """The audit annotations that say what was added again and what was left changed."""
    audit = {}
    if result.restored:
        audit["restored"] = ", ".join(result.restored)
    if result.changed:
        audit["changed"] = ", ".join(result.changed)
    return audit
