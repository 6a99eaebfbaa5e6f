"""The config model: profiles of sidecars and Pod settings, as pydantic validates them at load.

Every later step trusts this model, so its validators cover what would otherwise surface as
an invalid Pod at admission time: names that must be DNS labels, mounts that must name a
volume the profile brings, fields that the webhook itself owns. What a profile's container
specs must look like is checked in ``container_checks``; reading a file into this model and
the error messages that name key paths are ``loading``'s. A little over 300 lines: the model
is one concept, and its validators belong beside the fields they guard.
"""

from __future__ import annotations

import hashlib
import json
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from webhook.annotations import is_profile_name
from webhook.config.container_checks import K8sObject, check_containers, check_objects, is_dns_label
from webhook.kubeversion import DEFAULT_KUBERNETES_VERSION, KubeVersion


def _dns_label(value: str) -> str:
    if not is_dns_label(value):
        raise ValueError("must be a DNS label (lowercase letters, digits and '-', at most 63)")
    return value


def _relative_path(value: str) -> str:
    if not value or value.startswith("/") or ".." in value.split("/"):
        raise ValueError("must be a relative path without '..'")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
MountPath = Annotated[str, Field(min_length=1)]
Seconds = Annotated[int, Field(ge=0, le=3600)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PodInfo(_Strict):
    """A Downward API volume with the Pod's labels, annotations, name, namespace and uid."""

    enabled: bool = False
    mountPath: MountPath = "/etc/podinfo"
    volumeName: DnsLabel = "podinfo"
    env: bool = Field(True, description="also give sidecars POD_NAME, POD_NAMESPACE, POD_IP, NODE_NAME")


class ProbeTiming(_Strict):
    """Timing of a probe the webhook adds; the handler is always a tcpSocket on the first port."""

    initialDelaySeconds: Annotated[int, Field(ge=0)] = 0
    periodSeconds: Annotated[int, Field(ge=1, le=3600)] = 5
    timeoutSeconds: Annotated[int, Field(ge=1, le=3600)] = 1
    failureThreshold: Annotated[int, Field(ge=1)] = 3


class Probes(_Strict):
    """Default probes for application containers that declare a port and have none."""

    enabled: bool = False
    readiness: ProbeTiming = ProbeTiming()
    liveness: ProbeTiming | None = None
    startupPeriodSeconds: Annotated[int, Field(ge=1, le=60)] = 2


class ServiceAccountToken(_Strict):
    """A projected, audience-bound token mounted into the profile's sidecars only."""

    audience: str = Field(min_length=1)
    expirationSeconds: Annotated[int, Field(ge=600, le=2**32)] = 3600
    mountPath: MountPath = "/var/run/secrets/tokens"
    path: Annotated[str, AfterValidator(_relative_path)] = "token"
    volumeName: DnsLabel | None = None


class Namespaces(_Strict):
    """Which namespaces may use a profile: an empty allow list means every namespace."""

    allow: list[str] = []
    deny: list[str] = []

    def permits(self, namespace: str) -> bool:
        if any(fnmatchcase(namespace, pattern) for pattern in self.deny):
            return False
        return not self.allow or any(fnmatchcase(namespace, pattern) for pattern in self.allow)


def _quantity(value: Any) -> str:
    from webhook.quantity import parse

    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else value
    parse(text)  # ValueError names the value and the grammar
    return str(text)


Quantity = Annotated[str, BeforeValidator(_quantity)]


class ResourceOverrides(_Strict):
    """How far a Pod may set its sidecars' requests and limits: only the resources named here,
    each up to its maximum."""

    max: dict[Literal["cpu", "memory"], Quantity] = {}


class OverridePolicy(_Strict):
    """What a profile's Pods may change in its containers by annotation; by default nothing.

    An image outside the patterns is how a user would give a privileged sidecar's identity
    (its token, its mounts) to their own code, so images are shell patterns to match."""

    images: list[Annotated[str, Field(min_length=1)]] = []
    resources: ResourceOverrides | None = None
    env: list[Annotated[str, Field(min_length=1)]] = []


class Profile(_Strict):
    """One named set of sidecars plus the Pod settings that go with them."""

    containers: list[K8sObject] = []
    initContainers: list[K8sObject] = []
    volumes: list[K8sObject] = []
    volumeMounts: dict[str, list[K8sObject]] = {}
    appVolumeMounts: list[K8sObject] = []
    nativeSidecar: bool = True
    holdApplication: bool = True
    waitCommand: list[str] | None = None
    drainSeconds: Seconds = 0
    terminationGracePeriodSeconds: Annotated[int, Field(ge=0)] | None = None
    sidecarShutdownSeconds: Seconds = 5
    shareProcessNamespace: bool = False
    podinfo: PodInfo = PodInfo()
    probes: Probes = Probes()
    warmupSeconds: Seconds = 0
    serviceAccountToken: ServiceAccountToken | None = None
    namespaces: Namespaces = Namespaces()
    # A Pod that runs to completion (a Job's) where sidecars can only be legacy containers
    # (Kubernetes before 1.29): a legacy sidecar never exits, so the Pod would never complete.
    # skip: leave this profile out, with a warning; inject: inject anyway, with a warning;
    # deny: refuse the Pod (a sidecar no Pod may run without).
    runToCompletion: Literal["skip", "inject", "deny"] = "skip"
    overrides: OverridePolicy = OverridePolicy()
    # shadow: decided in full, patched not at all; the audit annotation `shadow` says what it would add.
    mode: Literal["inject", "shadow"] = "inject"

    @field_validator("containers", "initContainers")
    @classmethod
    def _containers_valid(cls, value: list[K8sObject], info: Any) -> list[K8sObject]:
        return check_containers(value, info.field_name)

    @field_validator("volumes")
    @classmethod
    def _volumes_valid(cls, value: list[K8sObject]) -> list[K8sObject]:
        for index, volume in enumerate(value):
            name = volume.get("name") if isinstance(volume, dict) else None
            if not is_dns_label(name):
                raise ValueError(f"volumes[{index}].name {name!r} must be a DNS label")
            if len(volume) != 2:
                raise ValueError(f"volumes[{index}] ({name}) needs exactly one source such as emptyDir or configMap")
        return value

    @field_validator("waitCommand")
    @classmethod
    def _wait_command_valid(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("waitCommand must not be empty; leave it out instead")
        return value

    @model_validator(mode="after")
    def _references_valid(self) -> Profile:
        names = [c["name"] for c in self.initContainers + self.containers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"container names must be unique within a profile; repeated: {', '.join(duplicates)}")
        unknown = sorted(set(self.volumeMounts) - set(names))
        if unknown:
            raise ValueError(f"volumeMounts names containers the profile does not have: {', '.join(unknown)}")
        volumes = {v["name"] for v in self.volumes}
        volume_names = [v["name"] for v in self.volumes]
        if len(volume_names) != len(volumes):
            raise ValueError("volume names must be unique within a profile")
        check_objects(self.appVolumeMounts, "appVolumeMounts", ("name", "mountPath"))
        mounts: list[tuple[str, Any]] = [("appVolumeMounts", m) for m in self.appVolumeMounts]
        for container in self.initContainers + self.containers:
            mounts += [(f"{container['name']}.volumeMounts", m) for m in container.get("volumeMounts", [])]
        for name, extra in self.volumeMounts.items():
            check_objects(extra, f"volumeMounts.{name}", ("name", "mountPath"))
            mounts += [(f"volumeMounts.{name}", m) for m in extra]
        reserved = {"serviceAccountToken.mountPath": self.serviceAccountToken.mountPath if self.serviceAccountToken else None,
                    "podinfo.mountPath": self.podinfo.mountPath if self.podinfo.enabled else None}
        for container in self.containers:
            paths = {m["mountPath"] for m in container.get("volumeMounts", []) + self.volumeMounts.get(container["name"], [])}
            for key, path in reserved.items():
                if path in paths:
                    raise ValueError(f"{key} {path} is already a mountPath of sidecar {container['name']}")
        for where, mount in mounts:
            if mount["name"] not in volumes:
                raise ValueError(
                    f"{where}: mount {mount['name']!r} names no volume of this profile "
                    f"(declare it under volumes; the profile has: {', '.join(sorted(volumes)) or 'none'})"
                )
        return self


# The controllers that create Pods on behalf of workloads. Clusters that run the
# controller manager without per-controller credentials show it as one user instead.
DEFAULT_REQUESTERS = [
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:kube-controller-manager",
]


class Requesters(_Strict):
    """Who may trigger injection (off by default). Patterns use shell wildcards (*, ?).

    Stops a user from hand-crafting a Pod that receives a privileged sidecar's identity:
    only Pods created by the listed controllers (or users and groups) are injected.
    """

    enabled: bool = False
    usernames: list[str] = Field(default_factory=lambda: list(DEFAULT_REQUESTERS))
    groups: list[str] = ["system:masters"]
    onMismatch: Literal["allow", "deny"] = "allow"

    def permits(self, username: str, groups: list[str]) -> bool:
        if any(fnmatchcase(username, pattern) for pattern in self.usernames):
            return True
        return any(fnmatchcase(group, pattern) for group in groups for pattern in self.groups)


class Limits(_Strict):
    """Bounds on what one review may cost; beyond them the onError policy answers."""

    maxContainers: Annotated[int, Field(ge=1)] = 100
    maxPatchBytes: Annotated[int, Field(ge=1024)] = 1024 * 1024


AUTO = "auto"


class Config(_Strict):
    """The whole injection config."""

    defaultProfiles: list[str] = []
    profiles: dict[str, Profile] = {}
    kubernetesVersion: str = DEFAULT_KUBERNETES_VERSION
    # With kubernetesVersion: auto (the cluster-aware mode reads the API server's version and the
    # oldest kubelet's), the version that applies until it is known, or when it cannot be read.
    kubernetesVersionFallback: str = DEFAULT_KUBERNETES_VERSION
    injectHostNetwork: bool = False
    onError: Literal["allow", "deny"] = "allow"
    deadlineSeconds: Annotated[float, Field(gt=0, le=30)] = 2.0
    requesters: Requesters = Requesters()
    limits: Limits = Limits()

    @field_validator("kubernetesVersion", "kubernetesVersionFallback", mode="before")
    @classmethod
    def _version_valid(cls, value: Any, info: Any) -> str:
        if isinstance(value, float):
            raise ValueError(f"write the version as a quoted string such as \"1.30\" (YAML read {value} as a number)")
        if str(value) == AUTO and info.field_name == "kubernetesVersion":
            return AUTO
        KubeVersion.parse(str(value))
        return str(value)

    @field_validator("defaultProfiles")
    @classmethod
    def _defaults_once(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("profiles")
    @classmethod
    def _profile_names_valid(cls, value: dict[str, Profile]) -> dict[str, Profile]:
        for name in value:
            if not is_profile_name(name):
                raise ValueError(f"profile name {name!r} must be a DNS label of at most 40 characters")
        return value

    @model_validator(mode="after")
    def _defaults_exist(self) -> Config:
        for name in self.defaultProfiles:
            if name not in self.profiles:
                raise ValueError(
                    f"defaultProfiles names {name!r}, which is not under profiles "
                    f"(configured: {', '.join(sorted(self.profiles)) or 'none'})"
                )
        return self

    @property
    def auto_version(self) -> bool:
        """kubernetesVersion: auto: the cluster-aware server detects it (webhook.cluster.versions)."""
        return self.kubernetesVersion == AUTO

    @cached_property
    def kube_version(self) -> KubeVersion:
        """The version injection targets; under `auto`, the fallback until the server applies the
        detected one (offline commands use the fallback)."""
        return KubeVersion.parse(self.kubernetesVersionFallback if self.auto_version else self.kubernetesVersion)

    @cached_property
    def resolved(self) -> dict[Any, Any]:
        """webhook.settings.resolve's memo for this config: settings depend only on the config, the
        profiles chosen, the Pod's override annotations and whether it runs to completion.
        The config is frozen and a reload builds a new one, so entries never go stale."""
        return {}

    @cached_property
    def config_hash(self) -> str:
        """Short content hash, recorded in the status annotation to tell configs apart. Of what the
        config sets (not the defaults), so a release that adds a key with a default does not make
        every injected Pod look stale (or its repair and uninject distrust the status)."""
        canonical = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


