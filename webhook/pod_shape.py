"""Is the Pod shaped like a Pod where injection reads or extends it (pure)?

The API server hands the webhook decoded, typed objects, so only hand-made or fuzzed reviews
trip these checks; checking once, before anything else is decided, keeps ``inject()`` free
of defensive code. ``policy.decide`` skips a Pod that fails them ("malformed-pod"), naming
the first field that is not what it should be.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.jsontree import is_map

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_CONTAINER_DICTS = ("lifecycle", "readinessProbe", "livenessProbe", "startupProbe")
_CONTAINER_LISTS_OF_OBJECTS = ("volumeMounts", "env", "ports")


_DICT_ONLY = frozenset({dict})
_STR_ONLY = frozenset({str})


def _all_maps(values: Any) -> bool:
    """Every item a mapping; exact dicts (all a decoded body has) are checked in one C pass."""
    return _DICT_ONLY.issuperset(map(type, values)) or all(is_map(v) for v in values)


def _all_strings(values: Any) -> bool:
    """Every item a string; exact strs are checked in one C pass (``values`` is read twice)."""
    return _STR_ONLY.issuperset(map(type, values)) or all(isinstance(v, str) for v in values)


def _container_problem(container: Mapping[str, Any]) -> str | None:
    """What is wrong with one container's fields that we read, as ``field is not ...``."""
    for name in _CONTAINER_DICTS:
        if name in container and not is_map(container[name]):
            return f"{name} is not an object"
    for name in _CONTAINER_LISTS_OF_OBJECTS:
        items = container.get(name, ())
        if (type(items) is not list and items != ()) or not _all_maps(items):
            return f"{name} is not a list of objects"
    return None


def _named_objects(value: Any, where: str) -> str | None:
    if not isinstance(value, list):
        return f"{where} is not a list"
    for index, item in enumerate(value):
        if not is_map(item) or not isinstance(item.get("name"), str):
            return f"{where}[{index}] is not an object with a name"
    return None


def shape_problem(pod: Mapping[str, Any]) -> str | None:
    """Why the parts of the Pod we read or extend are not shaped like a Pod, if they are not.

    The API server hands us decoded, typed objects, so this only trips on hand-made or
    fuzzed reviews; checking once here keeps inject() free of defensive code.
    """
    meta = pod.get("metadata", {})
    if not is_map(meta):
        return "metadata is not an object"
    for key in ("annotations", "labels"):
        value = meta.get(key, {})
        if not is_map(value) or not _all_strings(value.values()):
            return f"metadata.{key} is not a map of strings"
    spec = pod.get("spec")
    if not is_map(spec):
        return "spec is missing or not an object"
    if not spec.get("containers"):
        return "spec.containers is empty"
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and type(grace) is not int:  # 60.0 or "60": an API server never sends one
        return "spec.terminationGracePeriodSeconds is not an integer"
    for key in (*_CONTAINER_LISTS, "volumes"):
        if key in spec and (problem := _named_objects(spec[key], f"spec.{key}")):
            return problem
    for key in _CONTAINER_LISTS:
        for index, container in enumerate(spec.get(key, ())):
            if problem := _container_problem(container):
                return f"spec.{key}[{index}].{problem}"
    return None
