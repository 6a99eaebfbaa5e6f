"""What the Pod's containers share: the profiles' volumes (pod info and service-account
tokens among them), their mounts in the application containers, and the process namespace.

A volume name or mountPath the Pod already uses is left as it is, with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.injection.builder import Builder, Obj
from webhook.patch import add, grown
from webhook.plan import as_list, names, split_mounts


def add_volumes(builder: Builder) -> None:
    """The plan's volumes the Pod lacks; a profile's token volume only if its sidecars were taken."""
    existing = as_list(builder.spec.get("volumes"))
    existing_names = names(existing)
    users = set(existing_names)
    added: list[Obj] = []
    for volume, for_profile in builder.plan.volumes:
        if for_profile is not None and not any(name == for_profile for name, _ in builder.sidecars):
            continue
        name = volume.value["name"]
        if name in users:
            builder.warnings.append(f"volume {name} not added: the Pod already has a volume by that name")
            users.discard(name)  # one warning per name, even when two profiles bring it
        elif name not in builder.volumes_added and name not in existing_names:
            added.append(volume.copy() if builder.fresh_copies else volume.value)
            builder.volumes_added.append(name)
    if added:
        builder.spec["volumes"] = existing + added
        had_list = isinstance(builder.original_spec.get("volumes"), list)
        if not had_list:
            builder.created.append("spec.volumes")
        builder.spec_ops.extend(grown("/spec/volumes", had_list, len(existing), added, builder.spec["volumes"]))


def mount_app_volumes(builder: Builder, index: int, name: str, container: Mapping[str, Any],
                      mounts: list[Obj]) -> None:
    """The plan's application mounts into the container at ``index``, but where it already
    uses their mountPath."""
    added, skipped = split_mounts(container, mounts)
    if added:
        _add_app_mounts(builder, index, [dict(m) for m in added] if builder.fresh_copies else added)
        builder.added_to(name, "volumeMounts", [m["mountPath"] for m in added],
                         None if isinstance(container.get("volumeMounts"), list) else "volumeMounts")
    for mount in skipped:
        builder.warnings.append(
            f"container {name}: {mount['mountPath']} already mounted, {mount['name']} not mounted there"
        )


def _add_app_mounts(builder: Builder, index: int, mounts: list[Obj]) -> None:
    container = builder.app_container(index)
    existing = container.get("volumeMounts")
    have = existing if isinstance(existing, list) else []
    container["volumeMounts"] = have + mounts
    builder.app_ops.extend(grown(builder.app_path(index, "/volumeMounts"), isinstance(existing, list), len(have),
                                 mounts, container["volumeMounts"]))


def share_process_namespace(builder: Builder) -> None:
    """spec.shareProcessNamespace: true, except on hostPID Pods (the API server forbids both)
    and where the Pod already says false."""
    spec = builder.spec
    if spec.get("hostPID") is True:
        builder.warnings.append("shareProcessNamespace not set: the Pod uses hostPID, which forbids it")
    elif "shareProcessNamespace" not in spec:
        spec["shareProcessNamespace"] = True
        builder.set_share_process_namespace = True
        builder.spec_ops.append(add("/spec/shareProcessNamespace", True))
    elif spec["shareProcessNamespace"] is not True:
        builder.warnings.append("the Pod sets shareProcessNamespace: false; left as it is")
