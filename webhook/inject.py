"""Build the injected Pod from the original Pod and the resolved settings (pure).

The original Pod is never modified: every dict or list on the way to a change is copied
(copy-on-write), everything else is shared. That keeps injection cheap on big Pods. Each
change is also recorded as the JSON Patch op that makes it, where it is made: the builder
knows what it adds and where, so no diff of the two Pods is needed (a diff walked both trees
and was a fifth of a review's CPU).

The rule that governs every step: the user's data wins. A container, volume, env var or
mountPath that is already there is kept as it is and reported in a warning; we only add.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.annotations import STATUS
from webhook.config import Profile
from webhook.jsontree import Template, copy_tree, is_map
from webhook.patch import Op, add, escape, grown
from webhook.plan import (
    PROBE_HANDLERS,
    as_list,
    items,
    names,
    plan_for,
    split_mounts,
)
from webhook.policy import Settings

Obj = dict[str, Any]

DEFAULT_GRACE_SECONDS = 30  # what the API server defaults terminationGracePeriodSeconds to


@dataclass
class Injection:
    """The result: the new Pod, the patch that makes it from the original, what was added (for
    the status annotation) and warnings."""

    pod: Obj
    changed: bool
    warnings: list[str] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)


def _first_tcp_port(container: Mapping[str, Any]) -> int | None:
    for port in items(container.get("ports")):
        if is_map(port) and port.get("protocol", "TCP") == "TCP":
            number = port.get("containerPort")
            if isinstance(number, int) and not isinstance(number, bool):
                return number
    return None


class _Builder:
    """Holds the copy-on-write state of one injection; methods each add one feature."""

    def __init__(self, pod: Mapping[str, Any], settings: Settings, fresh_copies: bool = True) -> None:
        self.original = pod
        self.settings = settings
        self.fresh_copies = fresh_copies
        self.plan = plan_for(settings)
        self.pod: Obj = dict(pod)
        self.original_spec: Mapping[str, Any] = pod.get("spec") or {}
        self.spec: Obj = dict(self.original_spec)
        self.pod["spec"] = self.spec  # callers guarantee a spec with containers (policy checks the shape)
        self.warnings: list[str] = []
        self.original_app: list[Obj] = as_list(self.spec.get("containers"))
        self.app: list[Obj] = list(self.original_app)
        self.own_init: list[Any] = as_list(self.spec.get("initContainers"))
        self.taken_names = (
            names(self.app) | names(self.own_init) | names(items(self.spec.get("ephemeralContainers")))
        )
        self.init_added: list[Obj] = []
        self.sidecars: list[tuple[str, Obj]] = []  # (profile name, container)
        self.sidecar_plans: list[tuple[Profile, tuple[str, ...]]] = []  # per sidecar: profile, prepared warnings
        self.volumes_added: list[str] = []
        self.pod_level_warned = False
        self.exec_sleepers: list[str] = []  # containers whose drain needs a sleep binary
        # Ops by where they apply; ``assemble()`` puts them in an order that applies.
        self.app_ops: list[Op] = []  # on application containers, at their index after the legacy sidecars
        self.spec_ops: list[Op] = []

    def _sleep(self, container_name: str, seconds: int) -> Obj:
        """The native sleep action where the cluster has it; else exec sleep in the image."""
        if self.settings.sleep_action:
            return {"sleep": {"seconds": seconds}}
        self.exec_sleepers.append(container_name)
        return {"exec": {"command": ["sleep", str(seconds)]}}

    # -- containers -------------------------------------------------------------------

    def _take(self, container: Template, what: str) -> Obj | None:
        """A copy of a prepared container, unless the Pod already has a container by its name.

        Without ``fresh_copies`` only the container's own dict is copied: the builder changes
        a taken container by assigning its top-level keys, never inside its values."""
        name = container.value["name"]
        if name in self.taken_names:
            self.warnings.append(f"{what} {name} not injected: the Pod already has a container named {name}")
            return None
        self.taken_names.add(name)
        return container.copy() if self.fresh_copies else dict(container.value)

    def _fit_pod_level_resources(self, container: Obj) -> None:
        """With pod-level resources the containers' sum must fit in them; a sidecar that
        brings its own requests could push it over, so it shares the Pod's budget instead."""
        pod_resources = self.spec.get("resources")
        own = container.get("resources")
        if not is_map(pod_resources) or type(own) is not dict:
            return
        budgeted = set(pod_resources.get("requests") or {}) | set(pod_resources.get("limits") or {})
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
        if dropped and not self.pod_level_warned:
            self.pod_level_warned = True
            self.warnings.append(
                f"the Pod sets pod-level resources; injected containers share them ({', '.join(sorted(budgeted))})"
            )

    def collect_containers(self) -> None:
        # The prepared containers already carry their profile's mounts; pod-level resources
        # only touch "resources", which no preparation step does, so the order does not matter.
        for _, _, prepared in self.plan.init:
            taken = self._take(prepared, "init container")
            if taken is not None:
                self._fit_pod_level_resources(taken)
                self.init_added.append(taken)
        for profile_name, profile, prepared, warnings in self.plan.sidecars:
            taken = self._take(prepared, "sidecar")
            if taken is not None:
                self._fit_pod_level_resources(taken)
                self.sidecars.append((profile_name, taken))
                self.sidecar_plans.append((profile, warnings))

    @property
    def app_offset(self) -> int:
        """How many legacy sidecars go in front of the application containers (fixed once
        collect_containers() has run, before any application container is changed)."""
        return 0 if self.settings.native else len(self.sidecars)

    def _app_container(self, index: int) -> Obj:
        """The application container at index, copied once so we may change it."""
        container = self.app[index]
        if container is self.original_app[index]:
            container = dict(container)
            self.app[index] = container
        return container

    # -- volumes ----------------------------------------------------------------------

    def add_volumes(self) -> None:
        existing = as_list(self.spec.get("volumes"))
        existing_names = names(existing)
        users = set(existing_names)
        added: list[Obj] = []
        for volume, for_profile in self.plan.volumes:
            if for_profile is not None and not self._profile_has_sidecars(for_profile):
                continue
            name = volume.value["name"]
            if name in users:
                self.warnings.append(f"volume {name} not added: the Pod already has a volume by that name")
                users.discard(name)  # one warning per name, even when two profiles bring it
            elif name not in self.volumes_added and name not in existing_names:
                added.append(volume.copy() if self.fresh_copies else volume.value)
                self.volumes_added.append(name)
        if added:
            self.spec["volumes"] = existing + added
            had_list = isinstance(self.original_spec.get("volumes"), list)
            self.spec_ops.extend(grown("/spec/volumes", had_list, len(existing), added, self.spec["volumes"]))

    def _profile_has_sidecars(self, profile_name: str) -> bool:
        return any(name == profile_name for name, _ in self.sidecars)

    # -- sidecars ---------------------------------------------------------------------

    def configure_sidecars(self) -> None:
        """The prepared containers carry everything but the legacy lifecycle; their
        preparation's warnings are given here, in the order the sidecars were taken."""
        native = self.settings.native
        last_of_profile = {name: container for name, container in self.sidecars}
        for (profile_name, container), (profile, warnings) in zip(self.sidecars, self.sidecar_plans):
            self.warnings.extend(warnings)
            if not native:
                self._legacy(container, profile, container is last_of_profile[profile_name])

    def _legacy(self, container: Obj, profile: Profile, last_of_profile: bool) -> None:
        lifecycle = dict(container.get("lifecycle") or {})
        if self.settings.hold_application and last_of_profile:
            if profile.waitCommand is None:
                self.warnings.append(
                    f"legacy sidecar {container['name']}: no waitCommand, the application may start before it"
                )
            elif "postStart" not in lifecycle:
                lifecycle["postStart"] = {"exec": {"command": list(profile.waitCommand)}}
        if self.settings.drain_seconds > 0 and "preStop" not in lifecycle:
            keep_alive = self.settings.drain_seconds + self.settings.shutdown_seconds
            lifecycle["preStop"] = self._sleep(container["name"], keep_alive)
        if lifecycle:
            container["lifecycle"] = lifecycle

    # -- application containers -------------------------------------------------------

    def configure_app_containers(self) -> None:
        settings = self.settings
        app_mounts = self.plan.app_mounts
        sidecar_names = self.plan.sidecar_names
        for index, original in enumerate(self.app):
            name = original["name"]
            if name in sidecar_names:
                continue  # a sidecar already in the Pod (legacy, or added by hand) is not an application
            if app_mounts:
                added, skipped = split_mounts(original, app_mounts)
                if added:
                    self._add_app_mounts(index, [dict(m) for m in added] if self.fresh_copies else added)
                for mount in skipped:
                    self.warnings.append(
                        f"container {name}: {mount['mountPath']} already mounted, {mount['name']} not mounted there"
                    )
            if settings.drain_seconds > 0:
                self._drain(index, name)
            self._probes(index, name)

    def _add_app_mounts(self, index: int, mounts: list[Obj]) -> None:
        container = self._app_container(index)
        existing = container.get("volumeMounts")
        have = existing if isinstance(existing, list) else []
        container["volumeMounts"] = have + mounts
        self.app_ops.extend(grown(self._app_path(index, "/volumeMounts"), isinstance(existing, list), len(have),
                                  mounts, container["volumeMounts"]))

    def _app_path(self, index: int, below: str) -> str:
        """The JSON Pointer of ``below`` in the application container at ``index``, in the new Pod."""
        return f"/spec/containers/{self.app_offset + index}{below}"

    def _drain(self, index: int, name: str) -> None:
        lifecycle = self.app[index].get("lifecycle")
        has_lifecycle = is_map(lifecycle)
        if has_lifecycle and "preStop" in lifecycle:
            self.warnings.append(f"container {name} keeps its own preStop hook; no drain added")
            return
        container = self._app_container(index)
        new_lifecycle = dict(lifecycle) if has_lifecycle else {}
        new_lifecycle["preStop"] = self._sleep(name, self.settings.drain_seconds)
        container["lifecycle"] = new_lifecycle
        self.app_ops.append(add(self._app_path(index, "/lifecycle/preStop"), new_lifecycle["preStop"]) if has_lifecycle
                            else add(self._app_path(index, "/lifecycle"), new_lifecycle))

    def _probes(self, index: int, name: str) -> None:
        settings = self.settings
        if settings.probes is None and settings.warmup_seconds <= 0:
            return
        current = self.app[index]
        port = _first_tcp_port(current)
        wanted: dict[str, Obj] = {}
        if settings.probes is not None and port is not None:
            if "readinessProbe" not in current:
                assert self.plan.readiness is not None
                wanted["readinessProbe"] = _tcp_probe(port, self.plan.readiness)
            if self.plan.liveness is not None and "livenessProbe" not in current:
                wanted["livenessProbe"] = _tcp_probe(port, self.plan.liveness)
        if settings.probes is not None and port is None and "readinessProbe" not in current:
            self.warnings.append(f"container {name} declares no TCP containerPort; no readinessProbe added")
        if settings.warmup_seconds > 0 and "startupProbe" not in current:
            probe = _startup_probe(current, port, settings.warmup_seconds, settings.startup_period_seconds)
            if probe is None:
                self.warnings.append(f"container {name}: no port or probe to build a warm-up startupProbe from")
            else:
                wanted["startupProbe"] = probe
        if wanted:
            self._app_container(index).update(wanted)
            self.app_ops.extend(add(self._app_path(index, f"/{key}"), value) for key, value in wanted.items())

    # -- pod level --------------------------------------------------------------------

    def configure_pod(self) -> None:
        settings = self.settings
        spec = self.spec
        if settings.share_process_namespace:
            if spec.get("hostPID") is True:
                self.warnings.append("shareProcessNamespace not set: the Pod uses hostPID, which forbids it")
            elif "shareProcessNamespace" not in spec:
                spec["shareProcessNamespace"] = True
                self.spec_ops.append(add("/spec/shareProcessNamespace", True))
            elif spec["shareProcessNamespace"] is not True:
                self.warnings.append("the Pod sets shareProcessNamespace: false; left as it is")
        required = 0
        if settings.min_grace_seconds is not None:
            required = settings.min_grace_seconds
        if settings.drain_seconds > 0:
            required = max(required, settings.drain_seconds + settings.shutdown_seconds)
        current = spec.get("terminationGracePeriodSeconds")
        effective = current if isinstance(current, int) and not isinstance(current, bool) else DEFAULT_GRACE_SECONDS
        if required > effective:
            spec["terminationGracePeriodSeconds"] = required
            self.spec_ops.append({"op": "replace" if "terminationGracePeriodSeconds" in self.original_spec else "add",
                                  "path": "/spec/terminationGracePeriodSeconds", "value": required})
            if current is not None:
                self.warnings.append(
                    f"terminationGracePeriodSeconds raised from {current} to {required} to cover drain and shutdown"
                )

    def report_exec_sleep(self) -> None:
        if self.exec_sleepers:
            names = ", ".join(self.exec_sleepers)
            self.warnings.append(f"drain runs `sleep` in the image (no sleep action before Kubernetes 1.30): {names}")

    def assemble(self) -> list[Op]:
        """Put the containers in place; return the Pod spec's ops, in an order that applies:
        inserted containers first, then the changes to application containers at their
        shifted index. This rests on two rules the builder keeps: the only insertions into
        spec.containers are the legacy sidecars, in front; and no op writes inside a value an
        earlier op added (an added value is complete when its op is recorded)."""
        native = [c for _, c in self.sidecars] if self.settings.native else []
        legacy = [] if self.settings.native else [c for _, c in self.sidecars]
        ops: list[Op] = []
        front = self.init_added + native
        if front:
            self.spec["initContainers"] = front + self.own_init
            had_list = isinstance(self.original_spec.get("initContainers"), list)
            ops.extend(grown("/spec/initContainers", had_list, 0, front, self.spec["initContainers"]))
        self.spec["containers"] = legacy + self.app if legacy else self.app
        ops.extend(grown("/spec/containers", True, 0, legacy, self.spec["containers"]))
        ops.extend(self.app_ops)
        return ops + self.spec_ops


def _tcp_probe(port: int, timing: Mapping[str, int]) -> Obj:
    probe: Obj = {"tcpSocket": {"port": port}}
    probe.update({key: value for key, value in timing.items() if not (key == "initialDelaySeconds" and value == 0)})
    return probe


def _startup_probe(container: Mapping[str, Any], port: int | None, warmup: int, period: int) -> Obj | None:
    """A startupProbe whose failureThreshold x periodSeconds covers the warm-up.

    The handler is the container's own liveness or readiness handler when it has one
    (they test what the owner cares about), else a tcpSocket on its first port.
    """
    handler: Obj | None = None
    for key in ("livenessProbe", "readinessProbe"):
        existing = container.get(key)
        if is_map(existing):
            found = {h: copy_tree(existing[h]) for h in PROBE_HANDLERS if h in existing}
            if len(found) == 1:
                handler = found
                break
    if handler is None and port is not None:
        handler = {"tcpSocket": {"port": port}}
    if handler is None:
        return None
    return {**handler, "periodSeconds": period, "failureThreshold": max(1, math.ceil(warmup / period))}


def status_record(builder: _Builder, settings: Settings) -> Obj:
    return {
        "version": 1,
        "profiles": [name for name, _ in settings.profiles],
        "native": settings.native,
        "initContainers": [c["name"] for c in builder.init_added],
        "containers": [c["name"] for _, c in builder.sidecars],
        "volumes": builder.volumes_added,
        "configHash": settings.config_hash,
    }


def inject(pod: Mapping[str, Any], settings: Settings, fresh_copies: bool = True) -> Injection:
    """Return the injected Pod; `changed` is False when injection would add nothing.

    With ``fresh_copies`` (the default) nothing in the result is shared with the config, so a
    caller may change it freely. ``fresh_copies=False`` is for a caller that only serialises
    the result and drops it (the server): the added containers and volumes then share their
    nested objects with the per-settings plan, which saves copying them per review (a quarter
    of inject()'s time on a typical Pod). Changing such a result would change later answers."""
    builder = _Builder(pod, settings, fresh_copies)
    builder.collect_containers()
    builder.add_volumes()
    builder.configure_sidecars()
    builder.configure_app_containers()
    builder.configure_pod()
    builder.report_exec_sleep()
    spec_ops = builder.assemble()
    new_pod = builder.pod
    changed = bool(spec_ops)
    status = status_record(builder, settings)
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
