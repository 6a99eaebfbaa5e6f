"""Start and stop order: the application starts after its sidecars and stops before them.

Native sidecars get their order from the kubelet (their startupProbe comes prepared from
``webhook.plan``); legacy ones get a postStart hook that holds the application and a longer
preStop, so they outlive its drain. Application containers get a preStop drain, and the
grace period is raised to cover drain and shutdown, never lowered.
"""

from __future__ import annotations

from webhook.config import Profile
from webhook.injection.builder import Builder, Obj
from webhook.jsontree import is_map
from webhook.patch import add

DEFAULT_GRACE_SECONDS = 30  # what the API server defaults terminationGracePeriodSeconds to


def sleep(builder: Builder, container_name: str, seconds: int) -> Obj:
    """The native sleep action where the cluster has it; else exec sleep in the image."""
    if builder.settings.sleep_action:
        return {"sleep": {"seconds": seconds}}
    builder.exec_sleepers.append(container_name)
    return {"exec": {"command": ["sleep", str(seconds)]}}


def configure_sidecars(builder: Builder) -> None:
    """The prepared containers carry everything but the legacy lifecycle; their
    preparation's warnings are given here, in the order the sidecars were taken."""
    native = builder.settings.native
    last_of_profile = {name: container for name, container in builder.sidecars}
    for (profile_name, container), (profile, warnings) in zip(builder.sidecars, builder.sidecar_plans):
        builder.warnings.extend(warnings)
        if not native:
            _legacy(builder, container, profile, container is last_of_profile[profile_name])


def _legacy(builder: Builder, container: Obj, profile: Profile, last_of_profile: bool) -> None:
    settings = builder.settings
    lifecycle = dict(container.get("lifecycle") or {})
    if settings.hold_application and last_of_profile:
        if profile.waitCommand is None:
            builder.warnings.append(
                f"legacy sidecar {container['name']}: no waitCommand, the application may start before it"
            )
        elif "postStart" not in lifecycle:
            lifecycle["postStart"] = {"exec": {"command": list(profile.waitCommand)}}
    if settings.drain_seconds > 0 and "preStop" not in lifecycle:
        keep_alive = settings.drain_seconds + settings.shutdown_seconds
        lifecycle["preStop"] = sleep(builder, container["name"], keep_alive)
    if lifecycle:
        container["lifecycle"] = lifecycle


def drain(builder: Builder, index: int, name: str) -> None:
    """A preStop drain on the application container at ``index``, unless it has its own preStop."""
    lifecycle = builder.app[index].get("lifecycle")
    has_lifecycle = is_map(lifecycle)
    if has_lifecycle and "preStop" in lifecycle:
        builder.warnings.append(f"container {name} keeps its own preStop hook; no drain added")
        return
    container = builder.app_container(index)
    new_lifecycle = dict(lifecycle) if has_lifecycle else {}
    new_lifecycle["preStop"] = sleep(builder, name, builder.settings.drain_seconds)
    container["lifecycle"] = new_lifecycle
    builder.added_to(name, "lifecycle", ["preStop"], None if has_lifecycle else "lifecycle")
    builder.app_ops.append(add(builder.app_path(index, "/lifecycle/preStop"), new_lifecycle["preStop"])
                           if has_lifecycle else add(builder.app_path(index, "/lifecycle"), new_lifecycle))


def raise_grace_period(builder: Builder) -> None:
    """terminationGracePeriodSeconds raised to what the profiles and the drain need, never lowered."""
    settings = builder.settings
    spec = builder.spec
    required = 0
    if settings.min_grace_seconds is not None:
        required = settings.min_grace_seconds
    if settings.drain_seconds > 0:
        required = max(required, settings.drain_seconds + settings.shutdown_seconds)
    current = spec.get("terminationGracePeriodSeconds")
    effective = current if isinstance(current, int) and not isinstance(current, bool) else DEFAULT_GRACE_SECONDS
    if required > effective:
        spec["terminationGracePeriodSeconds"] = required
        builder.grace = (current, required)
        if "terminationGracePeriodSeconds" not in builder.original_spec:
            builder.created.append("spec.terminationGracePeriodSeconds")
        builder.spec_ops.append({"op": "replace" if "terminationGracePeriodSeconds" in builder.original_spec else "add",
                                 "path": "/spec/terminationGracePeriodSeconds", "value": required})
        if current is not None:
            builder.warnings.append(
                f"terminationGracePeriodSeconds raised from {current} to {required} to cover drain and shutdown"
            )


def report_exec_sleep(builder: Builder) -> None:
    if builder.exec_sleepers:
        names = ", ".join(builder.exec_sleepers)
        builder.warnings.append(f"drain runs `sleep` in the image (no sleep action before Kubernetes 1.30): {names}")
