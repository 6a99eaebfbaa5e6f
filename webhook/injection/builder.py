"""The copy-on-write state of one injection, which every feature module reads and extends.

The original Pod is never modified: every dict or list on the way to a change is copied
(copy-on-write), everything else is shared. That keeps injection cheap on big Pods. Each
change is also recorded as the JSON Patch op that makes it, where it is made, in
``app_ops`` (application containers) or ``spec_ops`` (the rest of the spec); ``assemble()``
(``webhook.injection.containers``) puts them in an order that applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.config import Profile
from webhook.patch import Op
from webhook.plan import as_list, items, names, plan_for
from webhook.settings import Settings

Obj = dict[str, Any]


class Builder:
    """Holds the copy-on-write state of one injection; the feature modules each add one feature."""

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
        self.taken_by: dict[str, str] = {}  # container name -> the profile whose container was taken
        self.init_added: list[Obj] = []
        self.sidecars: list[tuple[str, Obj]] = []  # (profile name, container)
        self.sidecar_plans: list[tuple[Profile, tuple[str, ...]]] = []  # per sidecar: profile, prepared warnings
        self.volumes_added: list[str] = []
        self.pod_level_warned = False
        self.exec_sleepers: list[str] = []  # containers whose drain needs a sleep binary
        # What was added to the Pod's own containers and spec, for the status (uninject reads it):
        # per application container, kind (volumeMounts, env, lifecycle, probes, created) -> items.
        self.app_added: dict[str, dict[str, list[str]]] = {}
        self.created: list[str] = []  # spec lists that the Pod did not have (spec.volumes...)
        self.grace: tuple[int | None, int] | None = None  # (the Pod's own, or None: unset; what we set)
        self.set_share_process_namespace = False
        # Ops by where they apply; ``assemble()`` puts them in an order that applies.
        self.app_ops: list[Op] = []  # on application containers, at their index after the legacy sidecars
        self.spec_ops: list[Op] = []

    @property
    def app_offset(self) -> int:
        """How many legacy sidecars go in front of the application containers (fixed once
        collect_containers() has run, before any application container is changed)."""
        return 0 if self.settings.native else len(self.sidecars)

    def app_container(self, index: int) -> Obj:
        """The application container at index, copied once so we may change it."""
        container = self.app[index]
        if container is self.original_app[index]:
            container = dict(container)
            self.app[index] = container
        return container

    def added_to(self, name: str, kind: str, items: list[str], created: str | None = None) -> None:
        """Record what was added to the Pod's own container ``name``: ``items`` of ``kind``, and the
        key ``created`` when the container did not have it before."""
        record = self.app_added.setdefault(name, {})
        record.setdefault(kind, []).extend(items)
        if created is not None:
            record.setdefault("created", []).append(created)

    def app_path(self, index: int, below: str) -> str:
        """The JSON Pointer of ``below`` in the application container at ``index``, in the new Pod."""
        return f"/spec/containers/{self.app_offset + index}{below}"
