"""The user API: the namespace label and Pod annotations, and how their values are read.

Every name a user can type is a constant in this file; README's annotation table mirrors it.
Parsing is strict: a value we cannot read denies the Pod with a message that names the
annotation, the value and what is allowed, rather than guessing what the user meant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.errors import AnnotationError, combined

PREFIX = "sidecar-injector.io/"

# Namespace label used by the MutatingWebhookConfiguration's namespaceSelector.
NAMESPACE_LABEL = PREFIX + "inject"
NAMESPACE_LABEL_VALUE = "enabled"

INJECT = PREFIX + "inject"
PROFILES = PREFIX + "profiles"
NATIVE_SIDECAR = PREFIX + "native-sidecar"
HOLD_APPLICATION = PREFIX + "hold-application"
DRAIN_SECONDS = PREFIX + "drain-seconds"
SHARE_PROCESS_NAMESPACE = PREFIX + "share-process-namespace"
PODINFO = PREFIX + "podinfo"
PROBES = PREFIX + "probes"
WARMUP_SECONDS = PREFIX + "warmup-seconds"
CONTAINERS = PREFIX + "containers"
STATUS = PREFIX + "status"

KNOWN = frozenset(
    {
        INJECT,
        PROFILES,
        NATIVE_SIDECAR,
        HOLD_APPLICATION,
        DRAIN_SECONDS,
        SHARE_PROCESS_NAMESPACE,
        PODINFO,
        PROBES,
        WARMUP_SECONDS,
        CONTAINERS,
        STATUS,
    }
)

# Per-container overrides, keyed by the injected container's name: PREFIX + "<container>.<field>",
# the field one of these or "env.<NAME>". Which of them a Pod may use is its profile's `overrides`.
OVERRIDE_IMAGE = "image"
OVERRIDE_RESOURCES = {
    "cpu-request": ("requests", "cpu"),
    "cpu-limit": ("limits", "cpu"),
    "memory-request": ("requests", "memory"),
    "memory-limit": ("limits", "memory"),
}
OVERRIDE_ENV = "env."
_OVERRIDE_KEY = re.compile(
    r"([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)\.(image|cpu-request|cpu-limit|memory-request|memory-limit|env\.[A-Za-z_][A-Za-z0-9_]*)"
)

MAX_SECONDS = 3600
_BOOL_ALLOWED = "allowed values are true or false"
_SECONDS_ALLOWED = f"allowed values are whole seconds from 0 to {MAX_SECONDS}"
_CONTAINER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_PROFILE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class Overrides:
    """Per-Pod settings read from annotations; None means "not set, use the profiles'"."""

    inject: bool | None = None
    profiles: tuple[str, ...] | None = None
    native_sidecar: bool | None = None
    hold_application: bool | None = None
    drain_seconds: int | None = None
    share_process_namespace: bool | None = None
    podinfo: bool | None = None
    probes: bool | None = None
    warmup_seconds: int | None = None
    # The application containers that get drains, probes and mounts (None: all of them).
    targets: tuple[str, ...] | None = None
    # (container, field, value) of every per-container override annotation, sorted; checked
    # against the profiles' `overrides` once the profiles are known (webhook.sidecar_overrides).
    per_container: tuple[tuple[str, str, str], ...] = ()


NO_OVERRIDES = Overrides()


def parse_bool(annotation: str, value: object) -> bool:
    """`true`/`false` in any letter case, surrounding blanks ignored."""
    text = str(value).strip().lower()
    if text == "true":
        return True
    if text == "false":
        return False
    raise AnnotationError(annotation, str(value), _BOOL_ALLOWED)


def parse_seconds(annotation: str, value: object) -> int:
    """A whole number of seconds in 0..3600, written in decimal digits."""
    text = str(value).strip()
    # Length first: int() of thousands of digits is slow, and over 4300 it raises.
    if len(text) > 4 or not text.isascii() or not text.isdigit() or int(text) > MAX_SECONDS:
        raise AnnotationError(annotation, str(value), _SECONDS_ALLOWED)
    return int(text)


def parse_profiles(annotation: str, value: object, known: Mapping[str, object]) -> tuple[str, ...]:
    """A comma list of configured profile names, deduplicated in order."""
    names: list[str] = []
    for raw in str(value).split(","):
        name = raw.strip()
        if not name:
            continue
        if name not in known:
            allowed = ", ".join(sorted(known)) or "none are configured"
            raise AnnotationError(annotation, str(value), f"unknown profile {name!r}; configured profiles: {allowed}")
        if name not in names:
            names.append(name)
    if not names:
        raise AnnotationError(
            annotation, str(value), f"name at least one profile (set {INJECT}: \"false\" to opt out)"
        )
    return tuple(names)


def parse_names(annotation: str, value: object) -> tuple[str, ...]:
    """A comma list of container names (DNS labels), deduplicated in order; at least one."""
    names = tuple(dict.fromkeys(part.strip() for part in str(value).split(",") if part.strip()))
    bad = [name for name in names if not _CONTAINER_NAME.fullmatch(name)]
    if not names or bad:
        raise AnnotationError(annotation, str(value), "a comma list of container names such as app,worker")
    return names


def parse_overrides(
    annotations: Mapping[str, object], labels: Mapping[str, object], profiles: Mapping[str, object]
) -> Overrides:
    """Read every annotation we own; raise an AnnotationError naming every invalid one."""
    overrides, errors = read_overrides(annotations, labels, profiles)
    if errors:
        raise combined(list(errors))
    return overrides


def read_overrides(
    annotations: Mapping[str, object], labels: Mapping[str, object], profiles: Mapping[str, object]
) -> tuple[Overrides, list[AnnotationError]]:
    """Read every annotation we own: the settings, and an error for each value we cannot read
    (so a user fixes them all in one go; an invalid one counts as not set).

    The inject switch is honoured as a label too (the webhook's objectSelector uses the
    label); when both are present the annotation wins.
    """
    if INJECT not in labels and not any(key.startswith(PREFIX) for key in annotations):
        return NO_OVERRIDES, []  # most Pods: nothing of ours to read
    errors: list[AnnotationError] = []

    def read(name: str, parse: Callable[..., Any], source: Mapping[str, object], *args: Any) -> Any:
        if name not in source:
            return None
        try:
            return parse(name, source[name], *args)
        except AnnotationError as error:
            errors.append(error)
            return None

    if INJECT in annotations:
        inject: bool | None = read(INJECT, parse_bool, annotations)
    else:
        inject = read(INJECT + " (label)", parse_bool, {INJECT + " (label)": labels[INJECT]}) if INJECT in labels else None
    overrides = Overrides(
        inject=inject,
        profiles=read(PROFILES, parse_profiles, annotations, profiles),
        native_sidecar=read(NATIVE_SIDECAR, parse_bool, annotations),
        hold_application=read(HOLD_APPLICATION, parse_bool, annotations),
        drain_seconds=read(DRAIN_SECONDS, parse_seconds, annotations),
        share_process_namespace=read(SHARE_PROCESS_NAMESPACE, parse_bool, annotations),
        podinfo=read(PODINFO, parse_bool, annotations),
        probes=read(PROBES, parse_bool, annotations),
        warmup_seconds=read(WARMUP_SECONDS, parse_seconds, annotations),
        targets=read(CONTAINERS, parse_names, annotations),
        per_container=tuple(sorted(
            (*found, str(value)) for key, value in annotations.items()
            if key.startswith(PREFIX) and key not in KNOWN and (found := override_key(key)) is not None)),
    )
    return overrides, errors


def override_key(key: str) -> tuple[str, str] | None:
    """(container, field) of a per-container override annotation, or None if the key is not one."""
    match = _OVERRIDE_KEY.fullmatch(key[len(PREFIX):]) if key.startswith(PREFIX) else None
    return (match.group(1), match.group(2)) if match else None


def unknown_annotations(annotations: Mapping[str, object]) -> list[str]:
    """Our-prefixed keys we do not know: most likely typos worth a warning."""
    return sorted(key for key in annotations
                  if key.startswith(PREFIX) and key not in KNOWN and override_key(key) is None)


def is_profile_name(name: str) -> bool:
    """Profile names become parts of volume names, so they must be DNS labels."""
    return len(name) <= 40 and bool(_PROFILE_NAME.fullmatch(name))
