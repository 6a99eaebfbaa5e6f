"""A namespace's annotations with our prefix as defaults for its Pods (Linkerd's order): the Pod's
annotation wins, then the namespace's, then the profiles'.

The settings a namespace may default are those that say how to inject (profiles, native
sidecars, hold-application, drain, process namespace, pod info, probes, warm-up, and the
per-container overrides, which the profiles' `overrides` still have to allow). Not the inject
switch (the namespace's label opts it in), not the target containers (names of one Pod's
containers), not the status. An invalid namespace value counts only for a Pod that relies on
it (the Pod sets no value of its own), which is denied with a message naming the namespace.
The cluster code keeps the annotations (webhook.cluster.namespaces) and reports invalid ones
once; this module reads them, pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace

from webhook import annotations as ann
from webhook.errors import AnnotationError, shown

SETTINGS = (ann.PROFILES, ann.NATIVE_SIDECAR, ann.HOLD_APPLICATION, ann.DRAIN_SECONDS, ann.SHARE_PROCESS_NAMESPACE,
            ann.PODINFO, ann.PROBES, ann.WARMUP_SECONDS)


class NamespaceAnnotationError(AnnotationError):
    """A namespace annotation a Pod relies on has a value we cannot accept."""

    reason = "invalid-namespace-annotation"

    def __init__(self, namespace: str, error: AnnotationError) -> None:
        self.namespace = namespace
        AnnotationError.__init__(self, error.annotation, error.value, error.allowed)
        self.args = (f"namespace {shown(namespace, quote=False)} annotation {error.annotation}={shown(error.value)} "
                     f"{error.problem}: {error.allowed}",)


def defaults_of(annotations: Mapping[str, str]) -> dict[str, str]:
    """The annotations a namespace may default, of all it has."""
    return {key: value for key, value in annotations.items()
            if key in SETTINGS or (key.startswith(ann.PREFIX) and ann.override_key(key) is not None)}


def read(namespace: str, annotations: Mapping[str, str],
         profiles: Mapping[str, object]) -> tuple[ann.Overrides, list[NamespaceAnnotationError]]:
    """The namespace's defaults, and an error naming the namespace for each value it cannot read."""
    overrides, errors = ann.read_overrides(defaults_of(annotations), {}, profiles)
    return overrides, [NamespaceAnnotationError(namespace, error) for error in errors]


def merged(pod: ann.Overrides, namespace: ann.Overrides) -> ann.Overrides:
    """Each setting the Pod leaves unset from the namespace; per-container overrides by key."""
    taken = {field.name: getattr(namespace, field.name) for field in fields(ann.Overrides)
             if field.name not in ("inject", "targets", "per_container")
             and getattr(pod, field.name) is None and getattr(namespace, field.name) is not None}
    own = {(container, key) for container, key, _ in pod.per_container}
    inherited = tuple(item for item in namespace.per_container if (item[0], item[1]) not in own)
    if not taken and not inherited:
        return pod
    return replace(pod, **taken, per_container=tuple(sorted(pod.per_container + inherited)))


def relied_on(errors: list[NamespaceAnnotationError], pod_annotations: Mapping[str, object]) -> list[AnnotationError]:
    """The invalid namespace values that count: those the Pod does not set itself."""
    return [error for error in errors if error.annotation not in pod_annotations]
