"""Build the injected Pod from the original Pod and the resolved settings (pure).

This is the injection builder's entry point: ``inject()`` runs the features of
``webhook.injection`` in order over one copy-on-write ``Builder`` (containers, volumes, the
start and stop order, mounts, drains and probes of the application containers, pod-level
settings), then adds the status annotation. The original Pod is never modified, and each
change is recorded as the JSON Patch op that makes it, where it is made: the builder knows
what it adds and where, so no diff of the two Pods is needed (a diff walked both trees and
was a fifth of a review's CPU).

The rule that governs every step: the user's data wins. A container, volume, env var or
mountPath that is already there is kept as it is and reported in a warning; we only add.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.annotations import STATUS
from webhook.injection.builder import Builder
from webhook.injection.containers import assemble, collect_containers
from webhook.injection.order import configure_sidecars, drain, raise_grace_period, report_exec_sleep
from webhook.injection.probes import add_probes
from webhook.injection.sharing import add_volumes, mount_app_volumes, share_process_namespace
from webhook.jsontree import is_map
from webhook.patch import Op, add, escape
from webhook.settings import Settings

Obj = dict[str, Any]


@dataclass
class Injection:
    """The result: the new Pod, the patch that makes it from the original, what was added (for
    the status annotation) and warnings."""

    pod: Obj
    changed: bool
    warnings: list[str] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)


def configure_app_containers(builder: Builder) -> None:
    """Each application container's mounts, drain and probes (a sidecar already in the Pod,
    legacy or added by hand, is not an application container; with target containers named,
    only those are configured)."""
    settings = builder.settings
    app_mounts = builder.plan.app_mounts
    sidecar_names = builder.plan.sidecar_names
    targets = settings.target_containers
    for index, original in enumerate(builder.app):
        name = original["name"]
        if name in sidecar_names or (targets is not None and name not in targets):
            continue
        if app_mounts:
            mount_app_volumes(builder, index, name, original, app_mounts)
        if settings.drain_seconds > 0:
            drain(builder, index, name)
        add_probes(builder, index, name)


def configure_pod(builder: Builder) -> None:
    if builder.settings.share_process_namespace:
        share_process_namespace(builder)
    raise_grace_period(builder)


def status_record(builder: Builder, settings: Settings, created: list[str]) -> Obj:
    """What was injected, as the status annotation records it (README: the status annotation).

    The first fields are version 1's; the rest say what was added to what the Pod had, so
    that uninject can take exactly that away, and are there only when something was: per
    application container the mountPaths, env names, lifecycle hooks and probes added (and
    the keys it did not have), the grace period before it was raised, and the spec keys and
    lists that were created."""
    status: Obj = {
        "version": 1,
        "profiles": [name for name, _ in settings.profiles],
        "native": settings.native,
        "initContainers": [c["name"] for c in builder.init_added],
        "containers": [c["name"] for _, c in builder.sidecars],
        "volumes": builder.volumes_added,
        "configHash": settings.config_hash,
    }
    if builder.app_added:
        status["appContainers"] = builder.app_added
    if builder.grace is not None:
        status["terminationGracePeriodSeconds"] = {"original": builder.grace[0], "set": builder.grace[1]}
    if builder.set_share_process_namespace:
        status["shareProcessNamespace"] = True
    if created:
        status["created"] = created
    return status


def _created_metadata(pod: Mapping[str, Any]) -> list[str]:
    """The metadata keys the status annotation will create: the Pod's annotations, its metadata."""
    metadata = pod.get("metadata")
    if not is_map(metadata):
        return ["metadata", "metadata.annotations"]
    return [] if is_map(metadata.get("annotations")) else ["metadata.annotations"]


def inject(pod: Mapping[str, Any], settings: Settings, fresh_copies: bool = True) -> Injection:
    """Return the injected Pod; `changed` is False when injection would add nothing.

    With ``fresh_copies`` (the default) nothing in the result is shared with the config, so a
    caller may change it freely. ``fresh_copies=False`` is for a caller that only serialises
    the result and drops it (the server): the added containers and volumes then share their
    nested objects with the per-settings plan, which saves copying them per review (a quarter
    of inject()'s time on a typical Pod). Changing such a result would change later answers."""
    builder = Builder(pod, settings, fresh_copies)
    collect_containers(builder)
    add_volumes(builder)
    configure_sidecars(builder)
    configure_app_containers(builder)
    configure_pod(builder)
    report_exec_sleep(builder)
    spec_ops = assemble(builder)
    new_pod = builder.pod
    changed = bool(spec_ops)
    status = status_record(builder, settings, [*builder.created, *_created_metadata(pod)] if changed else [])
    if not changed:
        return Injection(pod=dict(pod), changed=False, warnings=builder.warnings, status=status)
    text = orjson.dumps(status).decode()  # json.dumps' compact form, for ASCII (names are DNS labels)
    if not text.isascii():
        text = json.dumps(status, separators=(",", ":"))
    return Injection(pod=new_pod, changed=True, warnings=builder.warnings, status=status,
                     ops=[_annotate(pod, new_pod, text), *spec_ops])


def _annotate(pod: Mapping[str, Any], new_pod: Obj, text: str) -> Op:
    """Put the status annotation on the new Pod; return the op that does it."""
    original = pod.get("metadata")
    has_metadata = is_map(original)
    metadata = dict(original) if has_metadata else {}
    present = metadata.get("annotations")
    has_annotations = is_map(present)
    annotations = dict(present) if has_annotations else {}
    annotations[STATUS] = text
    metadata["annotations"] = annotations
    new_pod["metadata"] = metadata
    if not has_metadata:
        return add("/metadata", metadata)
    if not has_annotations:
        return add("/metadata/annotations", annotations)
    return {"op": "replace" if STATUS in present else "add", "path": f"/metadata/annotations/{escape(STATUS)}",
            "value": text}
