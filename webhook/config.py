"""The injection config: profiles of sidecars and Pod settings, validated once at load.

Loading is the only place a config can be wrong. Every later step trusts this model, so the
checks here cover what would otherwise surface as an invalid Pod at admission time: names
that must be DNS labels, mounts that must name a volume the profile brings, fields that
the webhook itself owns.
"""

from __future__ import annotations

import hashlib
import json
import re
from fnmatch import fnmatchcase
from functools import cached_property
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from webhook.annotations import is_profile_name
from webhook.errors import ConfigError
from webhook.kubeversion import DEFAULT_KUBERNETES_VERSION, KubeVersion

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
Seconds = Annotated[int, Field(ge=0, le=3600)]
K8sObject = dict[str, Any]

# Fields of a sidecar the webhook sets itself; a profile that sets them would be overridden.
_WEBHOOK_OWNED = ("restartPolicy",)
_INIT_FORBIDDEN = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe", "restartPolicy")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PodInfo(_Strict):
    """A Downward API volume with the Pod's labels, annotations, name, namespace and uid."""

    enabled: bool = False
    mountPath: str = "/etc/podinfo"
    volumeName: str = "podinfo"
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
    mountPath: str = "/var/run/secrets/tokens"
    path: str = "token"
    volumeName: str | None = None


def _check_container(profile_container: Any, where: str) -> K8sObject:
    if not isinstance(profile_container, dict):
        raise ValueError(f"{where} must be a Container object")
    name = profile_container.get("name")
    if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
        raise ValueError(f"{where}.name {name!r} must be a DNS label (lowercase letters, digits, '-'; <= 63)")
    if not isinstance(profile_container.get("image"), str) or not profile_container["image"].strip():
        raise ValueError(f"{where} ({name}) needs an image")
    return profile_container


class Namespaces(_Strict):
    """Which namespaces may use a profile: an empty allow list means every namespace."""

    allow: list[str] = []
    deny: list[str] = []

    def permits(self, namespace: str) -> bool:
        if any(fnmatchcase(namespace, pattern) for pattern in self.deny):
            return False
        return not self.allow or any(fnmatchcase(namespace, pattern) for pattern in self.allow)


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

    @field_validator("containers", "initContainers")
    @classmethod
    def _containers_valid(cls, value: list[K8sObject], info: Any) -> list[K8sObject]:
        owned = _WEBHOOK_OWNED if info.field_name == "containers" else _INIT_FORBIDDEN
        for index, item in enumerate(value):
            _check_container(item, f"{info.field_name}[{index}]")
            for key in owned:
                if key in item:
                    raise ValueError(
                        f"{info.field_name}[{index}] ({item['name']}) may not set {key}: "
                        + ("the webhook sets it" if key == "restartPolicy" and info.field_name == "containers"
                           else "plain init containers cannot have it")
                    )
        return value

    @field_validator("volumes")
    @classmethod
    def _volumes_valid(cls, value: list[K8sObject]) -> list[K8sObject]:
        for index, volume in enumerate(value):
            name = volume.get("name") if isinstance(volume, dict) else None
            if not isinstance(name, str) or len(name) > 63 or not _DNS_LABEL.match(name):
                raise ValueError(f"volumes[{index}].name {name!r} must be a DNS label")
            if len(volume) < 2:
                raise ValueError(f"volumes[{index}] ({name}) needs a source such as emptyDir or configMap")
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
        mounts: list[tuple[str, Any]] = [("appVolumeMounts", m) for m in self.appVolumeMounts]
        for container in self.initContainers + self.containers:
            mounts += [(f"{container['name']}.volumeMounts", m) for m in container.get("volumeMounts", [])]
        for name, extra in self.volumeMounts.items():
            mounts += [(f"volumeMounts.{name}", m) for m in extra]
        for where, mount in mounts:
            if not isinstance(mount, dict) or not mount.get("name") or not mount.get("mountPath"):
                raise ValueError(f"{where}: every mount needs a name and a mountPath")
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


class Config(_Strict):
    """The whole injection config."""

    defaultProfiles: list[str] = []
    profiles: dict[str, Profile] = {}
    kubernetesVersion: str = DEFAULT_KUBERNETES_VERSION
    injectHostNetwork: bool = False
    onError: Literal["allow", "deny"] = "allow"
    deadlineSeconds: Annotated[float, Field(gt=0, le=30)] = 2.0
    requesters: Requesters = Requesters()
    limits: Limits = Limits()

    @field_validator("kubernetesVersion", mode="before")
    @classmethod
    def _version_valid(cls, value: Any) -> str:
        KubeVersion.parse(str(value))
        return str(value)

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

    @cached_property
    def kube_version(self) -> KubeVersion:
        return KubeVersion.parse(self.kubernetesVersion)

    @cached_property
    def config_hash(self) -> str:
        """Short content hash, recorded in the status annotation to tell configs apart."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _format_errors(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        value = item.get("input")
        shown = json.dumps(value, default=str)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and place)"
        lines.append(f"{source}: {path}: {message} (got {shown})")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate already-parsed YAML; ConfigError names the key path, value and rule."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(data).__name__}")
    try:
        return Config.model_validate(dict(data))
    except ValidationError as error:
        raise ConfigError(_format_errors(error, source)) from None


def load_config_text(text: str, source: str = "config") -> Config:
    """Parse YAML text and validate it."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    return parse_config(data, source)


def load_config_file(path: Path | str) -> Config:
    """Read and validate a config file (the edge that touches disk)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config: {error.strerror or error}") from None
    return load_config_text(text, str(path))


def example_config_text() -> str:
    """The built-in example config shipped inside the package (used when --config is omitted)."""
    return resources.files("webhook").joinpath("example-config.yaml").read_text(encoding="utf-8")


def example_config() -> Config:
    return load_config_text(example_config_text(), "built-in example config")
