"""The profiles' containers taken into the Pod, and every container put in its place.

A container the Pod already has by name is kept as it is (the user's data wins) and the
profile's is left out with a warning. With pod-level resources, an injected container
shares the Pod's budget instead of bringing its own requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.injection.builder import Builder, Obj
from webhook.jsontree import Template, is_map
from webhook.patch import Op, grown


def take(builder: Builder, container: Template, what: str, profile_name: str) -> Obj | None:
    """A copy of a prepared container, unless the Pod already has a container by its name, or
    an earlier selected profile brings one (names are unique within a profile only: the first
    profile's is taken).

    Without ``fresh_copies`` only the container's own dict is copied: the builder changes
    a taken container by assigning its top-level keys, never inside its values."""
    name = container.value["name"]
    if name in builder.taken_names:
        owner = builder.taken_by.get(name)
        builder.warnings.append(
            f"{what} {name} not injected: the Pod already has a container named {name}" if owner is None else
            f"{what} {name} of profile {profile_name} not injected: profile {owner} brings a container named {name}")
        return None
    builder.taken_names.add(name)
    builder.taken_by[name] = profile_name
    return container.copy() if builder.fresh_copies else dict(container.value)


def pod_budget(spec: Mapping[str, Any]) -> frozenset[str] | None:
    """The resources the Pod's pod-level ``spec.resources`` budgets (in its requests or limits),
    or None when it has none: what decides which of a container's own requests and limits go."""
    resources = spec.get("resources")
    if not is_map(resources):
        return None
    return frozenset(name for kind in ("requests", "limits") if is_map(values := resources.get(kind))
                     for name in values)


def fit_pod_level_resources(builder: Builder, container: Obj) -> None:
    """With pod-level resources the containers' sum must fit in them; a sidecar that
    brings its own requests could push it over, so it shares the Pod's budget instead."""
    budgeted = pod_budget(builder.spec)
    own = container.get("resources")
    if budgeted is None or type(own) is not dict:
        return
    kept = dict(own)  # copy on write: the container's own objects may be the plan's
    dropped = False
    for kind in ("requests", "limits"):
        values = kept.get(kind)
        if isinstance(values, dict) and budgeted & set(values):
            remaining = {k: v for k, v in values.items() if k not in budgeted}
            dropped = True
            if remaining:
                kept[kind] = remaining
            else:
                del kept[kind]
    if not kept:
        del container["resources"]
    elif dropped:
        container["resources"] = kept
    if dropped and not builder.pod_level_warned:
        builder.pod_level_warned = True
        builder.warnings.append(
            f"the Pod sets pod-level resources; injected containers share them ({', '.join(sorted(budgeted))})"
        )


def collect_containers(builder: Builder) -> None:
    # The prepared containers already carry their profile's mounts; pod-level resources
    # only touch "resources", which no preparation step does, so the order does not matter.
    for profile_name, _, prepared in builder.plan.init:
        taken = take(builder, prepared, "init container", profile_name)
        if taken is not None:
            fit_pod_level_resources(builder, taken)
            builder.init_added.append(taken)
    for profile_name, profile, prepared, warnings in builder.plan.sidecars:
        taken = take(builder, prepared, "sidecar", profile_name)
        if taken is not None:
            fit_pod_level_resources(builder, taken)
            builder.sidecars.append((profile_name, taken))
            builder.sidecar_plans.append((profile, warnings))


def assemble(builder: Builder) -> list[Op]:
    """Put the containers in place; return the Pod spec's ops, in an order that applies:
    inserted containers first, then the changes to application containers at their
    shifted index. This rests on two rules the builder keeps: the only insertions into
    spec.containers are the legacy sidecars, in front; and no op writes inside a value an
    earlier op added (an added value is complete when its op is recorded)."""
    native = [c for _, c in builder.sidecars] if builder.settings.native else []
    legacy = [] if builder.settings.native else [c for _, c in builder.sidecars]
    ops: list[Op] = []
    front = builder.init_added + native
    spec = builder.spec
    if front:
        spec["initContainers"] = front + builder.own_init
        had_list = isinstance(builder.original_spec.get("initContainers"), list)
        if not had_list:
            builder.created.append("spec.initContainers")
        ops.extend(grown("/spec/initContainers", had_list, 0, front, spec["initContainers"]))
    spec["containers"] = legacy + builder.app if legacy else builder.app
    ops.extend(grown("/spec/containers", True, 0, legacy, spec["containers"]))
    ops.extend(builder.app_ops)
    return ops + builder.spec_ops
