"""What an injection with given settings does regardless of the Pod (pure), prepared once.

resolve() hands out one Settings object per (config, profiles, overrides), so the profiles'
containers with their mounts, env, restartPolicy and startupProbe, the volumes and the
application mounts are worked out once per Settings and only copied per review.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from webhook.config import PodInfo, Profile
from webhook.jsontree import Template, copy_tree, is_map
from webhook.settings import Settings
from webhook.sidecar_overrides import ContainerOverride
from webhook.sidecar_overrides import apply as apply_override

Obj = dict[str, Any]

SIDECAR_STARTUP_BUDGET_SECONDS = 120  # how long a held sidecar may take to become ready
PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
PODINFO_ENV = (
    ("POD_NAME", "metadata.name"),
    ("POD_NAMESPACE", "metadata.namespace"),
    ("POD_IP", "status.podIP"),
    ("NODE_NAME", "spec.nodeName"),
)


def as_list(value: Any) -> list[Any]:
    """A copy of the list (to extend), or a new empty one."""
    return list(value) if isinstance(value, list) else []


def items(value: Any) -> list[Any] | tuple[()]:
    """The list itself, to read (no copy), or nothing."""
    return value if type(value) is list else ()


def names(items: list[Any]) -> set[str]:
    return {item["name"] for item in items if is_map(item) and type(item.get("name")) is str}


def split_mounts(container: Mapping[str, Any], mounts: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(mounts to add, mounts skipped because the container already uses their mountPath)."""
    used = {m.get("mountPath") for m in items(container.get("volumeMounts")) if is_map(m)}
    added, skipped = [], []
    for mount in mounts:
        (skipped if mount["mountPath"] in used else added).append(mount)
        used.add(mount["mountPath"])
    return added, skipped


def add_mounts(container: Obj, mounts: list[Obj]) -> list[Obj]:
    """Append mounts whose mountPath the container does not use yet; return the skipped ones."""
    added, skipped = split_mounts(container, mounts)
    if added:
        container["volumeMounts"] = as_list(container.get("volumeMounts")) + [dict(m) for m in added]
    return skipped


def derived_startup_probe(readiness: Mapping[str, Any]) -> Obj | None:
    """A sidecar startupProbe from its readinessProbe: same handler, a bounded budget."""
    handler = {key: copy_tree(readiness[key]) for key in PROBE_HANDLERS if key in readiness}
    if len(handler) != 1:
        return None
    period = int(readiness.get("periodSeconds", 10) or 10)
    probe: Obj = dict(handler)
    probe["periodSeconds"] = period
    if "timeoutSeconds" in readiness:
        probe["timeoutSeconds"] = readiness["timeoutSeconds"]
    probe["failureThreshold"] = max(1, math.ceil(SIDECAR_STARTUP_BUDGET_SECONDS / period))
    return probe


class Plan:
    """What an injection with these settings does regardless of the Pod, worked out once per
    Settings object (resolve() reuses them): the profiles' containers with their mounts, env,
    restartPolicy and startupProbe already applied, the volumes, the mounts and probe timings
    for application containers. Its objects are never handed out: a review copies them."""

    def __init__(self, settings: Settings) -> None:
        self.init: list[tuple[str, Profile, Template]] = []  # (profile name, profile, prepared container)
        # (profile name, profile, prepared container, warnings its preparation gave)
        self.sidecars: list[tuple[str, Profile, Template, tuple[str, ...]]] = []
        overrides = {override.container: override for override in settings.container_overrides}
        for profile_name, profile in settings.profiles:
            for container in profile.initContainers:
                prepared = overridden(container, overrides)
                add_mounts(prepared, profile.volumeMounts.get(prepared["name"], []))
                self.init.append((profile_name, profile, Template(prepared)))
        for profile_name, profile in settings.profiles:
            for container in profile.containers:
                prepared = overridden(container, overrides)
                add_mounts(prepared, profile.volumeMounts.get(prepared["name"], []))
                warnings = prepare_sidecar(prepared, profile_name, profile, settings)
                self.sidecars.append((profile_name, profile, Template(prepared), tuple(warnings)))
        # (volume, the profile whose sidecars it is for, or None: always wanted)
        self.volumes: list[tuple[Template, str | None]] = [
            (Template(v), None) for _, p in settings.profiles for v in p.volumes]
        if settings.podinfo is not None:
            self.volumes.append((Template(podinfo_volume(settings.podinfo)), None))
        for profile_name, profile in settings.profiles:
            if profile.serviceAccountToken is not None:
                self.volumes.append((Template(token_volume(profile_name, profile)), profile_name))
        self.app_mounts: list[Obj] = [m for _, p in settings.profiles for m in p.appVolumeMounts]
        if settings.podinfo is not None:
            self.app_mounts.append(podinfo_mount(settings.podinfo))
        self.sidecar_names = {c["name"] for _, profile in settings.profiles for c in profile.containers}
        probes = settings.probes
        self.readiness = probes.readiness.model_dump(exclude_defaults=False) if probes is not None else None
        self.liveness = (probes.liveness.model_dump()
                         if probes is not None and probes.liveness is not None else None)


def overridden(container: Obj, overrides: Mapping[str, ContainerOverride]) -> Obj:
    """A copy of a profile's container with what the Pod's annotations set in it."""
    prepared: Obj = copy_tree(container)
    override = overrides.get(prepared["name"])
    if override is not None:
        apply_override(prepared, override)
    return prepared


def plan_for(settings: Settings) -> Plan:
    plan = settings.plan_cache.get("inject")
    if plan is None:
        plan = settings.plan_cache["inject"] = Plan(settings)
    return plan  # type: ignore[no-any-return]


def prepare_sidecar(container: Obj, profile_name: str, profile: Profile, settings: Settings) -> list[str]:
    """The sidecar changes that depend on the settings alone (all but the legacy lifecycle,
    which depends on which of the profile's sidecars the Pod takes); returns their warnings."""
    warnings: list[str] = []
    mounts: list[Obj] = []
    if settings.podinfo is not None:
        mounts.append(podinfo_mount(settings.podinfo))
    if profile.serviceAccountToken is not None:
        token = profile.serviceAccountToken
        mounts.append({"name": token_volume_name(profile_name, profile), "mountPath": token.mountPath,
                       "readOnly": True})
    for mount in add_mounts(container, mounts):
        warnings.append(
            f"sidecar {container['name']}: {mount['mountPath']} already mounted, {mount['name']} not mounted there"
        )
    if settings.podinfo is not None and settings.podinfo.env:
        env = as_list(container.get("env"))
        have = names(env)
        extra = [{"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}
                 for name, path in PODINFO_ENV if name not in have]
        if extra:
            container["env"] = env + extra
    if settings.native:
        container["restartPolicy"] = "Always"
        if settings.hold_application and "startupProbe" not in container:
            readiness = container.get("readinessProbe")
            probe = derived_startup_probe(readiness) if is_map(readiness) else None
            if probe is None:
                warnings.append(
                    f"sidecar {container['name']} has no readinessProbe: the application may start before it is ready"
                )
            else:
                container["startupProbe"] = probe
    return warnings


def podinfo_volume(podinfo: PodInfo) -> Obj:
    items = [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
    ]
    return {"name": podinfo.volumeName, "downwardAPI": {"items": items}}


def podinfo_mount(podinfo: PodInfo) -> Obj:
    return {"name": podinfo.volumeName, "mountPath": podinfo.mountPath, "readOnly": True}


def token_volume_name(profile_name: str, profile: Profile) -> str:
    token = profile.serviceAccountToken
    assert token is not None
    return token.volumeName or f"{profile_name}-token"


def token_volume(profile_name: str, profile: Profile) -> Obj:
    token = profile.serviceAccountToken
    assert token is not None
    source = {"audience": token.audience, "expirationSeconds": token.expirationSeconds, "path": token.path}
    return {
        "name": token_volume_name(profile_name, profile),
        "projected": {"sources": [{"serviceAccountToken": source}]},
    }
