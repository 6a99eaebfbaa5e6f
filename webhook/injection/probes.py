"""Probes for application containers: a tcpSocket readiness (and liveness) probe where the
container declares a TCP port and has none, and a warm-up startupProbe for slow starters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from webhook.injection.builder import Builder, Obj
from webhook.jsontree import copy_tree, is_map
from webhook.patch import add
from webhook.plan import PROBE_HANDLERS, items


def add_probes(builder: Builder, index: int, name: str) -> None:
    """The probes the settings ask for that the application container at ``index`` lacks."""
    settings = builder.settings
    if settings.probes is None and settings.warmup_seconds <= 0:
        return
    current = builder.app[index]
    port = first_tcp_port(current)
    wanted: dict[str, Obj] = {}
    plan = builder.plan
    if settings.probes is not None and port is not None:
        if "readinessProbe" not in current:
            assert plan.readiness is not None
            wanted["readinessProbe"] = tcp_probe(port, plan.readiness)
        if plan.liveness is not None and "livenessProbe" not in current:
            wanted["livenessProbe"] = tcp_probe(port, plan.liveness)
    if settings.probes is not None and port is None and "readinessProbe" not in current:
        builder.warnings.append(f"container {name} declares no TCP containerPort; no readinessProbe added")
    if settings.warmup_seconds > 0 and "startupProbe" not in current:
        probe = startup_probe(current, port, settings.warmup_seconds, settings.startup_period_seconds)
        if probe is None:
            builder.warnings.append(f"container {name}: no port or probe to build a warm-up startupProbe from")
        else:
            wanted["startupProbe"] = probe
    if wanted:
        builder.app_container(index).update(wanted)
        builder.added_to(name, "probes", list(wanted))
        builder.app_ops.extend(add(builder.app_path(index, f"/{key}"), value) for key, value in wanted.items())


def first_tcp_port(container: Mapping[str, Any]) -> int | None:
    for port in items(container.get("ports")):
        if is_map(port) and port.get("protocol", "TCP") == "TCP":
            number = port.get("containerPort")
            if isinstance(number, int) and not isinstance(number, bool):
                return number
    return None


def tcp_probe(port: int, timing: Mapping[str, int]) -> Obj:
    probe: Obj = {"tcpSocket": {"port": port}}
    probe.update({key: value for key, value in timing.items() if not (key == "initialDelaySeconds" and value == 0)})
    return probe


def startup_probe(container: Mapping[str, Any], port: int | None, warmup: int, period: int) -> Obj | None:
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
