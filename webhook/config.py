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
from collections.abc import Mapping
from fnmatch import fnmatchcase
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from webhook.annotations import is_profile_name
from webhook.errors import ConfigError
from webhook.kubeversion import DEFAULT_KUBERNETES_VERSION, KubeVersion

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def is_dns_label(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 63 and _DNS_LABEL.fullmatch(value) is not None


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
K8sObject = dict[str, Any]

# Fields of a sidecar the webhook sets itself; a profile that sets them would be overridden.
_WEBHOOK_OWNED = ("restartPolicy",)
_INIT_FORBIDDEN = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe", "restartPolicy")


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


_PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc", "sleep")
_PROBE_NUMBERS = {"initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 1,
                  "successThreshold": 1}


def _is_int(value: object, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_objects(value: Any, where: str, required: tuple[str, ...]) -> None:
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
            _check_objects(container[key], f"{where}.{key}", tuple(r for r in required if r))
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
    return container


class Namespaces(_Strict):
    """Which namespaces may use a profile: an empty allow list means every namespace."""

    allow: list[str] = []
    deny: list[str] = []

    def permits(self, namespace: str) -> bool:
        if any(fnmatchcase(namespace, pattern) for pattern in self.deny):
            return False
        return not self.allow or any(fnmatchcase(namespace, pattern) for pattern in self.allow)


def _forbid(item: K8sObject, keys: tuple[str, ...], where: str, sidecar: bool) -> None:
    """Fields the webhook sets itself (on sidecars), or that plain init containers cannot have."""
    for key in keys:
        if key in item:
            why = "the webhook sets it" if sidecar else "plain init containers cannot have it"
            raise ValueError(f"{where} may not set {key}: {why}")


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
            if isinstance(item, dict) and is_dns_label(item.get("name")):
                _forbid(item, owned, f"{info.field_name}[{index}] ({item['name']})", info.field_name == "containers")
            _check_container(item, f"{info.field_name}[{index}]")
        return value


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
        _check_objects(self.appVolumeMounts, "appVolumeMounts", ("name", "mountPath"))
        mounts: list[tuple[str, Any]] = [("appVolumeMounts", m) for m in self.appVolumeMounts]
        for container in self.initContainers + self.containers:
            mounts += [(f"{container['name']}.volumeMounts", m) for m in container.get("volumeMounts", [])]
        for name, extra in self.volumeMounts.items():
            _check_objects(extra, f"volumeMounts.{name}", ("name", "mountPath"))
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
        if isinstance(value, float):
            raise ValueError(f"write the version as a quoted string such as \"1.30\" (YAML read {value} as a number)")
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

    @cached_property
    def kube_version(self) -> KubeVersion:
        return KubeVersion.parse(self.kubernetesVersion)

    @cached_property
    def resolved(self) -> dict[Any, Any]:
        """policy.resolve's memo for this config: settings depend only on the config, the
        profiles chosen, the Pod's override annotations and whether it runs to completion.
        The config is frozen and a reload builds a new one, so entries never go stale."""
        return {}

    @cached_property
    def config_hash(self) -> str:
        """Short content hash, recorded in the status annotation to tell configs apart."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at a location, so an unknown-key error can list them."""
    model: Any = Config
    parts = list(loc)
    while parts:
        field = model.model_fields.get(parts.pop(0)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        annotation = field.annotation
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            if parts:
                parts.pop(0)  # the map key (a profile name)
        candidates = [a for a in (get_args(annotation) or (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return list(model.model_fields)


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
            allowed = _keys_at(item["loc"][:-1])
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
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


def override(config: Config, key: str, value: Any, source: str) -> Config:
    """The config with one top-level key replaced (a command-line flag), validated again;
    None leaves it as it is. ConfigError names the flag when the value is invalid."""
    if value is None:
        return config
    return parse_config({**config.model_dump(mode="json"), key: value}, source)


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
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: config is not UTF-8 text ({error.reason} at byte {error.start})") from None
    return load_config_text(text, str(path))


def example_config_text() -> str:
    """The built-in example config shipped inside the package (used when --config is omitted)."""
    return resources.files("webhook").joinpath("example-config.yaml").read_text(encoding="utf-8")


def example_config() -> Config:
    return load_config_text(example_config_text(), "built-in example config")
