"""Per-container overrides by annotation: image, requests and limits, env; as far as the profile allows.

A Pod tunes an injected container with ``sidecar-injector.io/<container>.<field>`` (what
Istio's ``proxyCPU``/``proxyImage`` and Vault's ``agent-requests-cpu`` do for their one
container). A profile allows nothing by default; its ``overrides`` name the image patterns,
the resources with their maximum, and the env vars a Pod may set. Every refused or malformed
override is a denial that names the annotation, the value and what the profile allows.
Quantities are compared as the API server would: request <= limit <= the profile's maximum.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any

from webhook import quantity
from webhook.annotations import OVERRIDE_ENV, OVERRIDE_IMAGE, OVERRIDE_RESOURCES, PREFIX
from webhook.config import OverridePolicy, Profile
from webhook.errors import AnnotationError, OverrideNotAllowed
from webhook.jsontree import copy_tree, is_map

Obj = dict[str, Any]
Entry = tuple[str, str, str]  # (container, field, value), as annotations.Overrides.containers holds them

# What one override may hold. A reference is a name of at most 255 characters, a tag of 128 and
# a digest; an env value set by annotation is a setting, not a payload (a file belongs in a
# ConfigMap). Longer values are denied, naming the bound: they would be copied into the patch,
# the injected Pod and every answer's memo.
MAX_IMAGE_CHARS = 512
MAX_ENV_VALUE_CHARS = 4096

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IMAGE = re.compile(
    rf"(?P<name>(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)


@dataclass(frozen=True)
class ContainerOverride:
    """What a Pod sets in one injected container."""

    container: str
    image: str | None = None
    resources: tuple[tuple[str, str, str], ...] = ()  # (requests | limits, cpu | memory, quantity)
    env: tuple[tuple[str, str], ...] = ()  # (name, value)


def grouped(entries: tuple[Entry, ...]) -> tuple[ContainerOverride, ...]:
    """The annotations' overrides, one value per container (entries come sorted by container)."""
    found: dict[str, ContainerOverride] = {}
    for container, field, value in entries:
        current = found.get(container, ContainerOverride(container))
        if field == OVERRIDE_IMAGE:
            current = ContainerOverride(container, value, current.resources, current.env)
        elif field in OVERRIDE_RESOURCES:
            current = ContainerOverride(container, current.image,
                                        (*current.resources, (*OVERRIDE_RESOURCES[field], value)), current.env)
        else:
            current = ContainerOverride(container, current.image, current.resources,
                                        (*current.env, (field.removeprefix(OVERRIDE_ENV), value)))
        found[container] = current
    return tuple(found.values())


def allowed(profile_name: str, policy: OverridePolicy, field: str) -> str:
    """What a profile lets its Pods set of one kind (images, a resource, env), as a denial says it."""
    if field == OVERRIDE_IMAGE:
        what = f"images {', '.join(policy.images)}" if policy.images else "no image override"
    elif field in OVERRIDE_RESOURCES:
        resource = OVERRIDE_RESOURCES[field][1]
        limit = policy.resources.max.get(resource) if policy.resources is not None else None  # type: ignore[call-overload]
        what = f"{resource} up to {limit}" if limit is not None else f"no {resource} override"
    else:
        what = f"env {', '.join(policy.env)}" if policy.env else "no env override"
    return f"profile {profile_name} allows {what}"


def check(entries: tuple[Entry, ...], profiles: tuple[tuple[str, Profile], ...]) -> list[AnnotationError]:
    """An error for every override that names no injected container, cannot be read, or a
    profile injecting that container does not allow; then for every request the overrides put
    above its limit.

    Container names are unique within a profile, not across profiles: when two selected
    profiles both bring a ``proxy``, injection takes the first one's and leaves the other out
    (with a warning), and the Plan lays the override over both. So an override must be allowed
    by every selected profile that has a container of that name, and fit each one's spec:
    checked against one profile, it could be laid over another's container, giving a sidecar
    with that profile's identity (its token, its mounts) an image the other profile allows."""
    owners: dict[str, list[tuple[str, Profile, Mapping[str, Any]]]] = {}
    for name, profile in profiles:
        for container in (*profile.initContainers, *profile.containers):
            owners.setdefault(container["name"], []).append((name, profile, container))
    errors: list[AnnotationError] = []
    for container, field, value in entries:
        key = f"{PREFIX}{container}.{field}"
        if container not in owners:
            selected = ", ".join(name for name, _ in profiles)
            errors.append(AnnotationError(key, value, f"profiles {selected} inject no container {container} "
                                                      f"(they inject: {', '.join(owners) or 'none'})"))
            continue
        problem = next((found for profile_name, profile, _ in owners[container]
                        if (found := _problem(key, field, value, profile_name, profile.overrides)) is not None), None)
        if problem is not None:
            errors.append(problem)
    if not errors:
        for override in grouped(entries):
            for _, _, spec in owners[override.container]:
                errors += _over_limit(override, spec)
    return errors


def image_reference(value: str) -> tuple[str, str | None, str | None] | None:
    """(name, tag, digest) of an image reference (``name[:tag][@digest]``, the grammar of
    distribution/reference that the container runtimes read), or None when it is not one:
    ASCII only, no blanks, control or invisible characters."""
    match = _IMAGE.fullmatch(value) if len(value) <= MAX_IMAGE_CHARS else None
    return (match.group("name"), match.group("tag"), match.group("digest")) if match else None


def image_allowed(value: str, patterns: list[str]) -> bool:
    """Whether an image reference matches one of the patterns. A pattern is matched against the
    whole reference, and a reference with a digest only by a pattern that names one itself
    (contains ``@``): a digest pins any image of the repository, so ``envoyproxy/envoy:v1.3*``
    must not let ``envoyproxy/envoy:v1.3@sha256:<anything>`` through."""
    reference = image_reference(value)
    if reference is None:
        return False
    pinned = reference[2] is not None
    return any(fnmatchcase(value, pattern) for pattern in patterns if "@" in pattern or not pinned)


def _problem(key: str, field: str, value: str, profile_name: str, policy: OverridePolicy) -> AnnotationError | None:
    if field == OVERRIDE_IMAGE:
        if len(value) > MAX_IMAGE_CHARS:
            return AnnotationError(key, value, f"an image reference of at most {MAX_IMAGE_CHARS} characters")
        if image_reference(value) is None:
            return AnnotationError(key, value, "an image reference name[:tag][@digest] such as "
                                               "registry.example.com/team/proxy:1.2 (ASCII, no blanks)")
        if not image_allowed(value, policy.images):
            pinned = "@" in value and not any("@" in pattern for pattern in policy.images)
            return OverrideNotAllowed(key, value, allowed(profile_name, policy, field)
                                      + ("; a digest only where a pattern has @" if pinned else ""))
        return None
    if field in OVERRIDE_RESOURCES:
        _, resource = OVERRIDE_RESOURCES[field]
        try:
            amount = quantity.parse(value)
        except ValueError:
            return AnnotationError(key, value, quantity.GRAMMAR)
        limit = policy.resources.max.get(resource) if policy.resources is not None else None  # type: ignore[call-overload]
        if limit is None or amount > quantity.parse(limit):
            return OverrideNotAllowed(key, value, allowed(profile_name, policy, field))
        return None
    if len(value) > MAX_ENV_VALUE_CHARS:
        return AnnotationError(key, value, f"an env value of at most {MAX_ENV_VALUE_CHARS} characters")
    if not any(fnmatchcase(field.removeprefix(OVERRIDE_ENV), pattern) for pattern in policy.env):
        return OverrideNotAllowed(key, value, allowed(profile_name, policy, field))
    return None


def _amounts(resources: Any, kind: str) -> dict[str, Decimal]:
    values = resources.get(kind) if is_map(resources) else None
    found: dict[str, Decimal] = {}
    for name, text in (values.items() if is_map(values) else ()):
        if (amount := quantity.value_of(text)) is not None:
            found[name] = amount
    return found


def _over_limit(override: ContainerOverride, spec: Mapping[str, Any]) -> list[AnnotationError]:
    """Requests above limits once the overrides are laid over the profile's own values."""
    if not override.resources:
        return []
    resources = spec.get("resources")
    requests, limits = _amounts(resources, "requests"), _amounts(resources, "limits")
    keys: dict[tuple[str, str], tuple[str, str]] = {}
    for kind, name, value in override.resources:
        (requests if kind == "requests" else limits)[name] = quantity.parse(value)
        field = next(f for f, where in OVERRIDE_RESOURCES.items() if where == (kind, name))
        keys[(kind, name)] = (f"{PREFIX}{override.container}.{field}", value)
    errors: list[AnnotationError] = []
    # Only where the Pod set one of the two: a profile's own request above its own limit is the
    # config's (refused at load), and has no annotation to name.
    for name in sorted({name for _, name, _ in override.resources} & set(requests) & set(limits)):
        if requests[name] > limits[name]:
            key, value = keys.get(("requests", name)) or keys[("limits", name)]
            errors.append(AnnotationError(key, value, f"the {name} request of {override.container} must not "
                                                      f"exceed its limit ({_shown(requests[name])} > {_shown(limits[name])})"))
    return errors


def _shown(amount: Decimal) -> str:
    return f"{amount.normalize():f}"


def apply(container: Obj, override: ContainerOverride) -> None:
    """Lay the override over a copy of the profile's container (the plan's own copy)."""
    if override.image is not None:
        container["image"] = override.image
    if override.resources:
        resources = copy_tree(container.get("resources")) if is_map(container.get("resources")) else {}
        for kind, name, value in override.resources:
            values = resources.get(kind)
            resources[kind] = {**(values if is_map(values) else {}), name: value}
        container["resources"] = resources
    if override.env:
        env = [dict(var) for var in container.get("env") or ()]
        for name, value in override.env:
            index = next((i for i, var in enumerate(env) if var.get("name") == name), None)
            if index is None:
                env.append({"name": name, "value": value})
            else:
                env[index] = {"name": name, "value": value}
        container["env"] = env
