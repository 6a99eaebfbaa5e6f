"""The container-shape checks: what a profile's container specs must look like at load.

Only the parts of a Container the webhook reads, or that would break every Pod it makes, are
checked (a DNS-label name, an image, ports, mounts, env, probes and hooks with one handler,
fields the webhook sets itself); everything else is passed through as written and the API
server judges it. The config model (``webhook.config.model``) runs them on every profile.
"""

from __future__ import annotations

import re
from typing import Any

from webhook import quantity

K8sObject = dict[str, Any]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def is_dns_label(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


# Fields of a sidecar the webhook sets itself; a profile that sets them would be overridden.
_WEBHOOK_OWNED = ("restartPolicy",)
_INIT_FORBIDDEN = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe", "restartPolicy")

_PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc", "sleep")
_PROBE_NUMBERS = {"initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 1,
                  "successThreshold": 1}


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_objects(value: Any, where: str, required: tuple[str, ...]) -> None:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list")
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not all(isinstance(item.get(key), str) and item[key] for key in required):
            raise ValueError(f"{where}[{index}] must be an object with {' and '.join(required)} as text")


def _check_container(container: Any, where: str) -> K8sObject:
    """The parts of a Container the webhook reads or that would break every Pod it makes.

    Everything else is passed through as written; the API server judges it.
    """
    if not isinstance(container, dict):
        raise ValueError(f"{where} must be a Container object")
    name = container.get("name")
    if not is_dns_label(name):
        raise ValueError(f"{where}.name {name!r} must be a DNS label (lowercase letters, digits, '-'; <= 63)")
    where = f"{where} ({name})"
    if not isinstance(container.get("image"), str) or not container["image"].strip():
        raise ValueError(f"{where} needs an image")
    for key, required in (("ports", ("",)), ("volumeMounts", ("name", "mountPath")), ("env", ("name",))):
        if key in container:
            check_objects(container[key], f"{where}.{key}", tuple(r for r in required if r))
    for index, port in enumerate(container.get("ports", [])):
        if not (_is_int(port.get("containerPort"), 1) and port["containerPort"] <= 65535):
            raise ValueError(f"{where}.ports[{index}].containerPort must be a whole number from 1 to 65535")
    for probe_name in _PROBES:
        if probe_name in container:
            probe = container[probe_name]
            if not isinstance(probe, dict) or sum(h in probe for h in _HANDLERS[:4]) != 1:
                raise ValueError(f"{where}.{probe_name} must be an object with one of exec, httpGet, tcpSocket, grpc")
            for key, minimum in _PROBE_NUMBERS.items():
                if key in probe and not _is_int(probe[key], minimum):
                    raise ValueError(f"{where}.{probe_name}.{key} must be a whole number >= {minimum}")
    lifecycle = container.get("lifecycle")
    if lifecycle is not None and not (
        isinstance(lifecycle, dict)
        and all(isinstance(hook, dict) and sum(h in hook for h in _HANDLERS) == 1 for hook in lifecycle.values())
    ):
        raise ValueError(f"{where}.lifecycle hooks must each be an object with one handler")
    _check_resources(container.get("resources"), where)
    return container


def _check_resources(resources: Any, where: str) -> None:
    """A request above its limit: the API server would refuse every Pod with this container
    (and a Pod's override of the other resource could not be judged). Values that are not
    quantities are left to the API server."""
    requests = resources.get("requests") if isinstance(resources, dict) else None
    limits = resources.get("limits") if isinstance(resources, dict) else None
    if not isinstance(requests, dict) or not isinstance(limits, dict):
        return
    for name in sorted(set(requests) & set(limits)):
        request, limit = quantity.value_of(requests[name]), quantity.value_of(limits[name])
        if request is not None and limit is not None and request > limit:
            raise ValueError(f"{where}.resources: the {name} request {requests[name]} exceeds its limit {limits[name]}")


def _forbid(item: K8sObject, keys: tuple[str, ...], where: str, sidecar: bool) -> None:
    """Fields the webhook sets itself (on sidecars), or that plain init containers cannot have."""
    for key in keys:
        if key in item:
            why = "the webhook sets it" if sidecar else "plain init containers cannot have it"
            raise ValueError(f"{where} may not set {key}: {why}")


def check_containers(value: list[K8sObject], field_name: str) -> list[K8sObject]:
    """A profile's ``containers`` (sidecars) or ``initContainers``, each checked."""
    owned = _WEBHOOK_OWNED if field_name == "containers" else _INIT_FORBIDDEN
    for index, item in enumerate(value):
        if isinstance(item, dict) and is_dns_label(item.get("name")):
            _forbid(item, owned, f"{field_name}[{index}] ({item['name']})", field_name == "containers")
        _check_container(item, f"{field_name}[{index}]")
    return value
