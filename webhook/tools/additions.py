"""What injection added to one Pod template, read back from the result: the status annotation
and the Pod before and after (what `explain` summarises)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.annotations import STATUS


@dataclass(frozen=True)
class Additions:
    """What injection added to one template, read back from the result (the `explain` summary)."""

    native: bool
    sidecars: tuple[str, ...]
    init_containers: tuple[str, ...]
    volumes: tuple[str, ...]
    application: tuple[str, ...]
    """Per application container: mounts, drain hook and probes added, e.g. "app: preStop sleep 5s"."""
    sidecar_hooks: tuple[str, ...]
    """What holds the application until a sidecar is ready, or keeps it alive while draining."""
    grace_seconds: tuple[int | None, int | None]
    """terminationGracePeriodSeconds before and after (None: not set, the server's 30 applies)."""
    share_process_namespace: bool


def _by_name(items: Any) -> dict[str, Mapping[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {i["name"]: i for i in items if isinstance(i, Mapping) and isinstance(i.get("name"), str)}


def _handler(hook: Any) -> str:
    if isinstance(hook, Mapping) and isinstance(hook.get("sleep"), Mapping):
        return f"sleep {hook['sleep'].get('seconds')}s"
    if isinstance(hook, Mapping) and isinstance(hook.get("exec"), Mapping):
        return "exec " + " ".join(str(part) for part in hook["exec"].get("command") or [])
    return "hook"


def _lifecycle(container: Mapping[str, Any]) -> Mapping[str, Any]:
    lifecycle = container.get("lifecycle")
    return lifecycle if isinstance(lifecycle, Mapping) else {}


def _app_changes(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    changes: list[str] = []
    paths_before = {m.get("mountPath") for m in before.get("volumeMounts") or [] if isinstance(m, Mapping)}
    mounted = [m["mountPath"] for m in after.get("volumeMounts") or []
               if isinstance(m, Mapping) and m.get("mountPath") not in paths_before]
    if mounted:
        changes.append("mounts " + ", ".join(mounted))
    if "preStop" in _lifecycle(after) and "preStop" not in _lifecycle(before):
        changes.append(f"preStop {_handler(_lifecycle(after)['preStop'])} (drain)")
    changes += [probe for probe in ("readinessProbe", "livenessProbe", "startupProbe")
                if probe in after and probe not in before]
    return f"{name}: {'; '.join(changes)}" if changes else None


def _sidecar_hooks(name: str, native: bool, after: Mapping[str, Any]) -> list[str]:
    hooks: list[str] = []
    if native and "startupProbe" in after:
        hooks.append(f"{name}: startupProbe; the application starts once it passes")
    post_start, pre_stop = _lifecycle(after).get("postStart"), _lifecycle(after).get("preStop")
    if not native and post_start is not None:
        hooks.append(f"{name}: postStart {_handler(post_start)}; the application starts once it returns")
    if not native and pre_stop is not None:
        hooks.append(f"{name}: preStop {_handler(pre_stop)}; keeps it up while the application drains")
    return hooks


def additions(pod: Mapping[str, Any], patched: Mapping[str, Any]) -> Additions:
    """Read what was added from the status annotation and the before/after Pods."""
    status = json.loads(patched["metadata"]["annotations"][STATUS])
    spec_before, spec_after = pod.get("spec") or {}, patched.get("spec") or {}
    native = bool(status.get("native"))
    sidecar_names = set(status.get("containers", []))
    before = _by_name(spec_before.get("containers"))
    injected = {**_by_name(spec_after.get("initContainers")), **_by_name(spec_after.get("containers"))}
    application = [
        change
        for name, container in _by_name(spec_after.get("containers")).items()
        if name not in sidecar_names and (change := _app_changes(name, before.get(name, {}), container))
    ]
    hooks = [hook for name in status.get("containers", []) if name in injected
             for hook in _sidecar_hooks(name, native, injected[name])]
    grace = (spec_before.get("terminationGracePeriodSeconds"), spec_after.get("terminationGracePeriodSeconds"))
    return Additions(
        native=native,
        sidecars=tuple(status.get("containers", [])),
        init_containers=tuple(status.get("initContainers", [])),
        volumes=tuple(status.get("volumes", [])),
        application=tuple(application),
        sidecar_hooks=tuple(hooks),
        grace_seconds=grace,
        share_process_namespace=spec_after.get("shareProcessNamespace") is True
        and spec_before.get("shareProcessNamespace") is not True,
    )
