"""Would the real API server accept this Pod? A test helper, so injected Pods are checked, not trusted.

Two layers, because neither is enough alone:

* ``schema_errors``: the OpenAPI JSON schemas that ``kubernetes_validate`` ships, in strict
  mode (unknown fields are errors, as ``kubectl``'s default server-side field validation
  makes them). Catches typos, wrong types, fields a version does not have.
* ``semantic_errors``: the rules the API server enforces in Go
  (kubernetes/kubernetes ``pkg/apis/core/validation/validation.go``) that no JSON schema
  expresses: unique names, cross references, one-of handlers, ranges, version-gated fields.
  Written from reading that file; messages name the field path and the rule.

The API server validates *after* defaulting, so unset fields that it would default
(probe thresholds, imagePullPolicy, protocol, terminationGracePeriodSeconds…) are
accepted here too. Where this checker is deliberately stricter than the server, the
rule's comment says so.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
from packaging.version import Version
from referencing import Registry, Resource

# --------------------------------------------------------------------------- schema layer

LATEST_SCHEMA: str = kubernetes_validate.latest_version()
SCHEMA_VERSIONS: tuple[str, ...] = ("1.30.0", LATEST_SCHEMA)

_MAX_MESSAGE = 300  # oneOf failures repeat the whole instance; keep messages readable


def _shipped_schema_version(version: str) -> str:
    """The newest schema set shipped that is not newer than ``version`` (as kubernetes_validate picks)."""
    wanted = Version(kv_utils.major_minor(version.removeprefix("v")))
    candidates = [v for v in kv_utils.all_versions() if Version(kv_utils.major_minor(v)) <= wanted]
    if not candidates or wanted > Version(kv_utils.major_minor(LATEST_SCHEMA)):
        raise ValueError(
            f"kubernetes_validate {kubernetes_validate.__version__} has no schemas for Kubernetes {version} "
            f"(it ships {kv_utils.all_versions()[0]}..{LATEST_SCHEMA})"
        )
    return candidates[-1]


def _load_schema(relative: str, version: str) -> Any:
    # kubernetes_validate reads its files through importlib_resources; keep any deprecation
    # noise from that path out of pytest's filterwarnings=error, without hiding ours.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(importlib_resources|kubernetes_validate)")
        return kv_utils.schema_contents(relative, version)


@functools.lru_cache(maxsize=None)
def _definitions(schema_version: str) -> tuple[str, Resource]:
    defs = _load_schema(f"kubernetes-json-schema/v{schema_version}-local-strict/_definitions.json", schema_version)
    return defs["$id"], Resource.from_contents(defs)


@functools.lru_cache(maxsize=None)
def _validator(schema_version: str, kind: str, api_version: str) -> jsonschema.Draft202012Validator | None:
    """A compiled strict validator, built once per (version, kind, apiVersion).

    ``kubernetes_validate.validate`` re-reads the 1.2 MB definitions file on every call
    (~8 ms) and stops at the first error; this reads it once and reports every error.
    Returns None when no schema exists (unknown or removed API).
    """
    # Same file naming as kubernetes_validate: rbac.authorization.k8s.io/v1 -> rbac-v1.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    name = f"kubernetes-json-schema/v{schema_version}-local-strict/{kind.lower()}-{group_version}.json"
    try:
        schema = _load_schema(name, schema_version)
    except FileNotFoundError:
        return None
    defs_id, defs = _definitions(schema_version)
    registry = Registry().with_resources([(schema["$id"], Resource.from_contents(schema)), (defs_id, defs)])
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _schema_path(error: jsonschema.ValidationError) -> str:
    return _fmt_path(error.absolute_path) or "<root>"


def schema_errors(obj: dict, version: str) -> list[str]:
    """Strict JSON-schema errors of ``obj`` for Kubernetes ``version`` ("1.30", "1.37.0"); [] when valid.

    Unknown fields are errors (strict). An apiVersion/kind without a schema in that
    version (e.g. the removed batch/v1beta1 CronJob) is reported as an error, not raised.
    Raises ValueError only for a Kubernetes version kubernetes_validate does not ship.
    """
    schema_version = _shipped_schema_version(version)
    label = f"schema {kv_utils.major_minor(schema_version)}"
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{label}: <root>: apiVersion and kind are required to pick a schema"]
    validator = _validator(schema_version, kind, api_version)
    if validator is None:
        return [f"{label}: <root>: no schema for {api_version} {kind} (API removed or unknown in this version)"]
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    out = []
    for error in errors:
        message = error.message if len(error.message) <= _MAX_MESSAGE else error.message[:_MAX_MESSAGE] + "…"
        out.append(f"{label}: {_schema_path(error)}: {message}")
    return out


# --------------------------------------------------------------------------- formats

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_VAR_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_HTTP_HEADER_NAME = re.compile(r"^[-A-Za-z0-9!#$%&'*+.^_`|~]+$")
_IANA_SVC_NAME = re.compile(r"^[-a-z0-9]+$")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}  # fmt: skip

MAX_INT32 = 2**31 - 1
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
DEFAULT_TERMINATION_GRACE_PERIOD = 30


def _dns1123_label(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters (RFC 1123 label)"
    if not _DNS1123_LABEL.match(value):
        return "must be a lowercase RFC 1123 label: lowercase alphanumerics or '-', starting and ending alphanumeric"
    return None


def _dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters (RFC 1123 subdomain)"
    if not _DNS1123_SUBDOMAIN.match(value):
        return "must be a lowercase RFC 1123 subdomain: lowercase alphanumerics, '-' or '.', starting and ending alphanumeric"
    return None


def _qualified_name(value: str) -> str | None:
    parts = value.split("/")
    if len(parts) > 2:
        return "a qualified name is [prefix/]name with at most one '/'"
    name = parts[-1]
    if len(parts) == 2:
        if not parts[0]:
            return "prefix part of a qualified name must be non-empty"
        if problem := _dns1123_subdomain(parts[0]):
            return f"prefix part {problem}"
    if not name:
        return "name part of a qualified name must be non-empty"
    if len(name) > 63:
        return "name part of a qualified name must be no more than 63 characters"
    if not _QUALIFIED_NAME_PART.match(name):
        return "name part of a qualified name must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
    return None


def _port_name(value: str) -> str | None:
    """IANA_SVC_NAME: at most 15 characters, lowercase alphanumerics and '-', at least one letter."""
    if len(value) > 15:
        return "must be no more than 15 characters (IANA_SVC_NAME)"
    if not _IANA_SVC_NAME.match(value):
        return "must contain only lowercase alphanumerics and '-' (IANA_SVC_NAME)"
    if not re.search(r"[a-z]", value):
        return "must contain at least one letter (IANA_SVC_NAME)"
    if "--" in value:
        return "must not contain consecutive hyphens (IANA_SVC_NAME)"
    if value.startswith("-") or value.endswith("-"):
        return "must not begin or end with a hyphen (IANA_SVC_NAME)"
    return None


def _port_number(value: Any) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return "must be a port number between 1 and 65535, inclusive"
    return None


def _port_num_or_name(value: Any) -> str | None:
    if isinstance(value, str):
        problem = _port_name(value)
        return f"named port {problem}" if problem else None
    return _port_number(value)


def _config_map_key(value: str) -> str | None:
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _CONFIG_MAP_KEY.match(value):
        return "must consist of alphanumerics, '-', '_' or '.'"
    if value in (".", "..") or value.startswith(".."):
        return "must not be '.', '..' or start with '..'"
    return None


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource.Quantity ("100m", "1Gi", "1e3", 2) as a Decimal, or None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value)
    if not match:
        return None
    number, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation:
        return None
    if suffix in _BINARY_SUFFIXES:
        return base * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return base * _DECIMAL_SUFFIXES[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return base * Decimal(10) ** int(suffix[1:])
        except ValueError:
            return None
    return None


def _local_path(value: str) -> str | None:
    """A path that must stay inside the volume: relative, without '..' elements."""
    if value.startswith("/"):
        return "must be a relative path"
    if ".." in value.replace("\\", "/").split("/"):
        return "must not contain '..'"
    if value.startswith(".."):
        return "must not start with '..'"
    return None


def _fmt_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{part!r}]"
    return out


# --------------------------------------------------------------------------- semantic layer

# Downward API fieldPaths (v1 Pod field labels), from validEnvDownwardAPIFieldPathExpressions
# and validVolumeDownwardAPIFieldPathExpressions. Subscripted labels['k'] / annotations['k']
# are accepted in both places.
ENV_FIELD_PATHS = frozenset({
    "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
    "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
})  # fmt: skip
VOLUME_FIELD_PATHS = frozenset({"metadata.name", "metadata.namespace", "metadata.uid", "metadata.labels", "metadata.annotations"})
RESOURCE_FIELD_PATHS = frozenset({
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
    "requests.cpu", "requests.memory", "requests.ephemeral-storage",
})  # fmt: skip
_SUBSCRIPTED = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")

PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")
# Fields an ephemeral container may set (allowedEphemeralContainerFields); anything else is forbidden.
EPHEMERAL_ALLOWED = frozenset({
    "name", "image", "command", "args", "workingDir", "envFrom", "env", "volumeMounts", "volumeDevices",
    "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext",
    "stdin", "stdinOnce", "tty", "targetContainerName",
})  # fmt: skip
STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})

# Feature gates, as (major, minor) where the gate is on by default.
SIDECAR_CONTAINERS = (1, 29)  # initContainers[].restartPolicy: Always (beta)
SLEEP_ACTION = (1, 30)  # lifecycle sleep handler (alpha 1.29, beta 1.30)
SLEEP_ACTION_ALLOW_ZERO = (1, 33)  # sleep.seconds: 0 (KEP-4818 beta)
RELAXED_ENV_VAR_NAMES = (1, 32)  # any printable ASCII but '=' (KEP-4369 beta)
POD_LEVEL_RESOURCES = (1, 34)  # spec.resources (KEP-2837 beta)


class _Checker:
    """Accumulates "<field path>: <rule>" messages while walking one Pod."""

    def __init__(self, version: tuple[int, int]) -> None:
        self.version = version
        self.errors: list[str] = []
        self.grace = DEFAULT_TERMINATION_GRACE_PERIOD  # effective terminationGracePeriodSeconds

    def err(self, path: tuple[Any, ...], message: str) -> None:
        self.errors.append(f"{_fmt_path(path) or '<root>'}: {message}")

    # ---- metadata

    def metadata(self, meta: Any) -> None:
        path = ("metadata",)
        if meta is None:
            return
        if not isinstance(meta, Mapping):
            self.err(path, "must be an object")
            return
        name, generate = meta.get("name"), meta.get("generateName")
        # Neither is required here: a pod template has no name, a Pod gets one from its owner.
        if isinstance(name, str) and name and (problem := _dns1123_subdomain(name)):
            self.err(path + ("name",), f"invalid Pod name {name!r}: {problem}")
        if isinstance(generate, str) and generate and (problem := _dns1123_subdomain(generate.removesuffix("-") or "a")):
            self.err(path + ("generateName",), f"invalid generateName {generate!r}: {problem}")
        namespace = meta.get("namespace")
        if isinstance(namespace, str) and namespace and (problem := _dns1123_label(namespace)):
            self.err(path + ("namespace",), f"invalid namespace {namespace!r}: {problem}")
        self.labels(meta.get("labels"), path + ("labels",))
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping):
            total = 0
            for key, value in annotations.items():
                key = str(key)
                if problem := _qualified_name(key.lower()):
                    self.err(path + ("annotations", key), f"invalid annotation key: {problem}")
                total += len(key.encode()) + len((value if isinstance(value, str) else str(value or "")).encode())
            if total > TOTAL_ANNOTATION_SIZE_LIMIT:
                self.err(path + ("annotations",), f"Too long: annotations total {total} bytes, must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes (256 KiB)")

    def labels(self, labels: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(labels, Mapping):
            return
        for key, value in labels.items():
            key = str(key)
            if problem := _qualified_name(key):
                self.err(path + (key,), f"invalid label key: {problem}")
            if isinstance(value, str) and (len(value) > 63 or not _LABEL_VALUE.match(value)):
                self.err(path + (key,), f"invalid label value {value!r}: at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric")

    # ---- pod spec

    def spec(self, spec: Any) -> None:
        path = ("spec",)
        if not isinstance(spec, Mapping):
            self.err(path, "Required value: a Pod needs a spec")
            return
        grace = spec.get("terminationGracePeriodSeconds")
        if grace is not None and isinstance(grace, int) and grace < 0:
            # Stricter than the server, which since 1.21 silently rewrites negative values to 1.
            self.err(path + ("terminationGracePeriodSeconds",), f"must be >= 0, got {grace}")
        self.grace = grace if isinstance(grace, int) and grace >= 0 else DEFAULT_TERMINATION_GRACE_PERIOD
        deadline = spec.get("activeDeadlineSeconds")
        if isinstance(deadline, int) and not 1 <= deadline <= MAX_INT32:
            self.err(path + ("activeDeadlineSeconds",), f"must be between 1 and {MAX_INT32}, inclusive")
        self.enum(spec.get("restartPolicy"), ("Always", "OnFailure", "Never"), path + ("restartPolicy",))
        self.enum(spec.get("dnsPolicy"), ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"), path + ("dnsPolicy",))
        if spec.get("dnsPolicy") == "None":
            config = spec.get("dnsConfig")
            if not isinstance(config, Mapping) or not config.get("nameservers"):
                self.err(path + ("dnsConfig", "nameservers"), "Required value: at least one nameserver when dnsPolicy is None")
        for key in ("hostname", "subdomain"):
            if isinstance(spec.get(key), str) and spec[key] and (problem := _dns1123_label(spec[key])):
                self.err(path + (key,), problem)
        for key in ("serviceAccountName", "nodeName", "priorityClassName"):
            if isinstance(spec.get(key), str) and spec[key] and (problem := _dns1123_subdomain(spec[key])):
                self.err(path + (key,), problem)
        self.labels(spec.get("nodeSelector"), path + ("nodeSelector",))
        self.pod_security(spec)
        self.tolerations(spec.get("tolerations"), path + ("tolerations",))

        volumes = self.volumes(spec.get("volumes"))
        containers = _list(spec.get("containers"))
        init_containers = _list(spec.get("initContainers"))
        ephemeral = _list(spec.get("ephemeralContainers"))
        if not containers:
            self.err(path + ("containers",), "Required value: a Pod needs at least one container")

        seen: set[str] = set()
        for field in ("containers", "initContainers", "ephemeralContainers"):
            for i, ctr in enumerate(_list(spec.get(field))):
                name = ctr.get("name") if isinstance(ctr, Mapping) else None
                if isinstance(name, str) and name:
                    if name in seen:
                        self.err(path + (field, i, "name"), f"Duplicate value {name!r}: container names must be unique across containers, initContainers and ephemeralContainers")
                    seen.add(name)

        host_network = spec.get("hostNetwork") is True
        for i, ctr in enumerate(containers):
            self.container(ctr, path + ("containers", i), volumes, host_network, kind="regular")
        for i, ctr in enumerate(init_containers):
            self.container(ctr, path + ("initContainers", i), volumes, host_network, kind="init")
        for i, ctr in enumerate(ephemeral):
            self.container(ctr, path + ("ephemeralContainers", i), volumes, host_network, kind="ephemeral")
        if ephemeral:
            self.err(path + ("ephemeralContainers",), "Forbidden: cannot be set on create (only through the ephemeralcontainers subresource)")
            targets = {c.get("name") for c in containers + init_containers if isinstance(c, Mapping)}
            for i, ctr in enumerate(ephemeral):
                target = ctr.get("targetContainerName") if isinstance(ctr, Mapping) else None
                if target and target not in targets:
                    self.err(path + ("ephemeralContainers", i, "targetContainerName"), f"Not found: {target!r} is not a container or init container of this Pod")

        # Host ports must not collide across regular containers; init containers run one by
        # one, so each is only checked against itself (as checkHostPortConflicts does).
        self.host_ports(containers, path + ("containers",))
        for i, ctr in enumerate(init_containers):
            self.host_ports([ctr], path + ("initContainers",), offset=i)
        if "resources" in spec:
            self.pod_resources(spec, containers, init_containers)

    def enum(self, value: Any, allowed: tuple[str, ...], path: tuple[Any, ...]) -> None:
        if value is not None and value not in allowed:
            self.err(path, f"Unsupported value {value!r}: supported values: {', '.join(allowed)}")

    def pod_security(self, spec: Mapping[str, Any]) -> None:
        path = ("spec",)
        if spec.get("hostPID") is True and spec.get("shareProcessNamespace") is True:
            self.err(path + ("shareProcessNamespace",), "Invalid value: ShareProcessNamespace and HostPID cannot both be enabled")
        sc = spec.get("securityContext")
        if not isinstance(sc, Mapping):
            return
        sc_path = path + ("securityContext",)
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            self.id_range(sc.get(key), sc_path + (key,))
        for i, gid in enumerate(_list(sc.get("supplementalGroups"))):
            self.id_range(gid, sc_path + ("supplementalGroups", i))
        if sc.get("hostUsers") is False:
            for key in ("hostNetwork", "hostPID", "hostIPC"):
                if spec.get(key) is True:
                    self.err(path + (key,), "Forbidden: when `hostUsers` is false")
        self.seccomp(sc.get("seccompProfile"), sc_path + ("seccompProfile",))
        names: set[str] = set()
        for i, sysctl in enumerate(_list(sc.get("sysctls"))):
            name = sysctl.get("name") if isinstance(sysctl, Mapping) else None
            if name in names:
                self.err(sc_path + ("sysctls", i, "name"), f"Duplicate value {name!r}")
            names.add(name)

    def id_range(self, value: Any, path: tuple[Any, ...]) -> None:
        if isinstance(value, int) and not 0 <= value <= MAX_INT32:
            self.err(path, f"must be between 0 and {MAX_INT32}, inclusive")

    def seccomp(self, profile: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(profile, Mapping):
            return
        kind = profile.get("type")
        if kind not in ("Localhost", "RuntimeDefault", "Unconfined"):
            self.err(path + ("type",), f"Unsupported value {kind!r}: supported values: Localhost, RuntimeDefault, Unconfined")
        elif kind == "Localhost" and not profile.get("localhostProfile"):
            self.err(path + ("localhostProfile",), "Required value: must be set when seccomp type is Localhost")
        elif kind != "Localhost" and profile.get("localhostProfile") is not None:
            self.err(path + ("localhostProfile",), "Invalid value: can only be set when seccomp type is Localhost")

    def tolerations(self, tolerations: Any, path: tuple[Any, ...]) -> None:
        for i, tol in enumerate(_list(tolerations)):
            if not isinstance(tol, Mapping):
                continue
            key, op, value, effect = tol.get("key") or "", tol.get("operator") or "Equal", tol.get("value") or "", tol.get("effect") or ""
            if key and (problem := _qualified_name(key)):
                self.err(path + (i, "key"), problem)
            if not key and op != "Exists":
                self.err(path + (i, "operator"), "operator must be Exists when `key` is empty")
            if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
                self.err(path + (i, "effect"), "effect must be 'NoExecute' when `tolerationSeconds` is set")
            if op == "Exists" and value:
                self.err(path + (i, "operator"), "value must be empty when `operator` is 'Exists'")
            elif op not in ("Equal", "Exists"):
                self.err(path + (i, "operator"), f"Unsupported value {op!r}: supported values: Equal, Exists")
            if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                self.err(path + (i, "effect"), f"Unsupported value {effect!r}: supported values: NoSchedule, PreferNoSchedule, NoExecute")

    # ---- volumes

    def volumes(self, volumes: Any) -> dict[str, Mapping[str, Any]]:
        """Validate spec.volumes; return the valid ones by name (what mounts may reference)."""
        by_name: dict[str, Mapping[str, Any]] = {}
        for i, vol in enumerate(_list(volumes)):
            path = ("spec", "volumes", i)
            if not isinstance(vol, Mapping):
                continue
            name = vol.get("name")
            ok = True
            if not name:
                self.err(path + ("name",), "Required value: volume name")
                ok = False
            elif problem := _dns1123_label(str(name)):
                self.err(path + ("name",), f"invalid volume name {name!r}: {problem}")
                ok = False
            if name and name in by_name:
                self.err(path + ("name",), f"Duplicate value {name!r}: volume names must be unique")
                ok = False
            sources = [k for k, v in vol.items() if k != "name" and v is not None]
            if not sources:
                self.err(path, "Required value: must specify a volume type")
            elif len(sources) > 1:
                self.err(path + (sources[1],), f"Forbidden: may not specify more than 1 volume type (got {', '.join(sources)})")
            else:
                self.volume_source(sources[0], vol[sources[0]], path + (sources[0],))
            if ok:
                by_name[str(name)] = vol
        return by_name

    def volume_source(self, kind: str, source: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(source, Mapping):
            return
        if kind in ("secret", "configMap", "downwardAPI", "projected"):
            self.file_mode(source.get("defaultMode"), path + ("defaultMode",))
        if kind == "secret" and not source.get("secretName"):
            self.err(path + ("secretName",), "Required value")
        if kind == "configMap" and not source.get("name"):
            self.err(path + ("name",), "Required value")
        if kind in ("secret", "configMap"):
            for i, item in enumerate(_list(source.get("items"))):
                self.key_to_path(item, path + ("items", i))
        if kind == "persistentVolumeClaim" and not source.get("claimName"):
            self.err(path + ("claimName",), "Required value")
        if kind == "hostPath":
            host = source.get("path")
            if not host:
                self.err(path + ("path",), "Required value")
            elif ".." in str(host).split("/"):
                self.err(path + ("path",), "must not contain '..'")
            self.enum(source.get("type"), ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"), path + ("type",))
        if kind == "emptyDir" and source.get("sizeLimit") is not None:
            size = parse_quantity(source["sizeLimit"])
            if size is None or size < 0:
                self.err(path + ("sizeLimit",), "must be a valid non-negative resource quantity")
        if kind == "downwardAPI":
            for i, item in enumerate(_list(source.get("items"))):
                self.downward_api_file(item, path + ("items", i))
        if kind == "projected":
            self.projected(source, path)

    def file_mode(self, mode: Any, path: tuple[Any, ...]) -> None:
        if isinstance(mode, int) and not 0 <= mode <= 0o777:
            self.err(path, "must be a number between 0 and 0777 (octal), both inclusive")

    def key_to_path(self, item: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(item, Mapping):
            return
        if not item.get("key"):
            self.err(path + ("key",), "Required value")
        self.item_path(item.get("path"), path + ("path",))
        self.file_mode(item.get("mode"), path + ("mode",))

    def item_path(self, value: Any, path: tuple[Any, ...]) -> None:
        if not value:
            self.err(path, "Required value")
        elif problem := _local_path(str(value)):
            self.err(path, f"Invalid value {value!r}: {problem}")

    def downward_api_file(self, item: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(item, Mapping):
            return
        self.item_path(item.get("path"), path + ("path",))
        field_ref, resource_ref = item.get("fieldRef"), item.get("resourceFieldRef")
        if field_ref is not None and resource_ref is not None:
            self.err(path, "fieldRef and resourceFieldRef can not be specified simultaneously")
        elif field_ref is not None:
            self.field_ref(field_ref, VOLUME_FIELD_PATHS, path + ("fieldRef",))
        elif resource_ref is not None:
            self.resource_field_ref(resource_ref, path + ("resourceFieldRef",), volume=True)
        else:
            self.err(path, "Required value: one of fieldRef and resourceFieldRef is required")
        self.file_mode(item.get("mode"), path + ("mode",))

    def projected(self, source: Mapping[str, Any], path: tuple[Any, ...]) -> None:
        seen_paths: set[str] = set()

        def claim(file_path: Any) -> None:
            if file_path:
                if file_path in seen_paths:
                    self.err(path, f"Invalid value {file_path!r}: conflicting duplicate paths in projected sources")
                seen_paths.add(file_path)

        for i, src in enumerate(_list(source.get("sources"))):
            src_path = path + ("sources", i)
            if not isinstance(src, Mapping):
                continue
            kinds = [k for k, v in src.items() if v is not None]
            if len(kinds) > 1:
                self.err(src_path, f"Forbidden: may not specify more than 1 volume type per source (got {', '.join(kinds)})")
            for kind in ("secret", "configMap"):
                if isinstance(src.get(kind), Mapping):
                    if not src[kind].get("name"):
                        self.err(src_path + (kind, "name"), "Required value")
                    for j, item in enumerate(_list(src[kind].get("items"))):
                        self.key_to_path(item, src_path + (kind, "items", j))
                        claim(item.get("path") if isinstance(item, Mapping) else None)
            if isinstance(src.get("downwardAPI"), Mapping):
                for j, item in enumerate(_list(src["downwardAPI"].get("items"))):
                    self.downward_api_file(item, src_path + ("downwardAPI", "items", j))
                    claim(item.get("path") if isinstance(item, Mapping) else None)
            token = src.get("serviceAccountToken")
            if isinstance(token, Mapping):
                token_path = src_path + ("serviceAccountToken",)
                expiration = token.get("expirationSeconds", 3600)  # defaulted to one hour
                if isinstance(expiration, int) and expiration < 600:
                    self.err(token_path + ("expirationSeconds",), "may not specify a duration less than 10 minutes (600 s)")
                if isinstance(expiration, int) and expiration > 2**32:
                    self.err(token_path + ("expirationSeconds",), "may not specify a duration larger than 2^32 seconds")
                self.item_path(token.get("path"), token_path + ("path",))
                claim(token.get("path"))

    # ---- containers

    def container(self, ctr: Any, path: tuple[Any, ...], volumes: dict[str, Mapping[str, Any]], host_network: bool, kind: str) -> None:
        if not isinstance(ctr, Mapping):
            return
        name = ctr.get("name")
        if not name:
            self.err(path + ("name",), "Required value: container name")
        elif problem := _dns1123_label(str(name)):
            self.err(path + ("name",), f"invalid container name {name!r}: {problem}")
        image = ctr.get("image")
        if not image:
            self.err(path + ("image",), "Required value: container image")
        elif isinstance(image, str) and image != image.strip():
            self.err(path + ("image",), "must not have leading or trailing whitespace")
        self.enum(ctr.get("imagePullPolicy"), ("Always", "IfNotPresent", "Never"), path + ("imagePullPolicy",))
        self.enum(ctr.get("terminationMessagePolicy"), ("File", "FallbackToLogsOnError"), path + ("terminationMessagePolicy",))
        self.ports(ctr, path, host_network and kind == "regular")
        for i, env in enumerate(_list(ctr.get("env"))):
            self.env_var(env, path + ("env", i))
        for i, src in enumerate(_list(ctr.get("envFrom"))):
            self.env_from(src, path + ("envFrom", i))
        self.volume_mounts(ctr, path, volumes, ephemeral=kind == "ephemeral")
        self.resources(ctr.get("resources"), path + ("resources",))
        self.security_context(ctr.get("securityContext"), path + ("securityContext",))

        restart = ctr.get("restartPolicy")
        if kind == "regular":
            if "restartPolicy" in ctr:
                self.err(path + ("restartPolicy",), "Forbidden: may not be set for non-init containers")
            self.probes_and_lifecycle(ctr, path)
        elif kind == "init":
            sidecar = False
            if "restartPolicy" in ctr:
                if self.version < SIDECAR_CONTAINERS:
                    self.err(path + ("restartPolicy",), f"Forbidden: init container restartPolicy (sidecar containers) needs Kubernetes >= {_v(SIDECAR_CONTAINERS)}")
                elif restart != "Always":
                    self.err(path + ("restartPolicy",), f"Unsupported value {restart!r}: supported values: Always")
                else:
                    sidecar = True
            if sidecar:
                self.probes_and_lifecycle(ctr, path)
            else:
                for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                    if ctr.get(field) is not None:
                        self.err(path + (field,), "Forbidden: may not be set for init containers without restartPolicy=Always")
        else:
            for field in ctr:
                if field not in EPHEMERAL_ALLOWED and ctr[field] is not None:
                    self.err(path + (field,), "Forbidden: cannot be set for an Ephemeral Container")

    def probes_and_lifecycle(self, ctr: Mapping[str, Any], path: tuple[Any, ...]) -> None:
        if ctr.get("lifecycle") is not None:
            self.lifecycle(ctr["lifecycle"], path + ("lifecycle",))
        for field in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = ctr.get(field)
            if probe is None:
                continue
            self.probe(probe, path + (field,))
            if not isinstance(probe, Mapping):
                continue
            if field in ("livenessProbe", "startupProbe") and probe.get("successThreshold", 1) != 1:
                self.err(path + (field, "successThreshold"), f"Invalid value {probe.get('successThreshold')!r}: must be 1 for {field}")
            if field == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
                self.err(path + (field, "terminationGracePeriodSeconds"), "Invalid value: must not be set for readinessProbes")

    def probe(self, probe: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(probe, Mapping):
            return
        self.handler(probe, PROBE_HANDLERS, path)
        # The server defaults 0 to the documented default and rejects negatives; an explicit 0
        # (or unset) is fine, so only explicit values below the minimum are flagged. 0 for
        # fields whose minimum is 1 is flagged too: stricter, it is never what was meant.
        minimums = {"initialDelaySeconds": 0, "timeoutSeconds": 1, "periodSeconds": 1, "successThreshold": 1, "failureThreshold": 1}
        for field, minimum in minimums.items():
            value = probe.get(field)
            if isinstance(value, int) and value < minimum:
                self.err(path + (field,), f"Invalid value {value}: must be >= {minimum}")
        grace = probe.get("terminationGracePeriodSeconds")
        if isinstance(grace, int) and grace <= 0:
            self.err(path + ("terminationGracePeriodSeconds",), "must be greater than 0")

    def lifecycle(self, lifecycle: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(lifecycle, Mapping):
            return
        for hook in ("postStart", "preStop"):
            if lifecycle.get(hook) is not None:
                self.handler(lifecycle[hook], LIFECYCLE_HANDLERS, path + (hook,))

    def handler(self, handler: Any, allowed: tuple[str, ...], path: tuple[Any, ...]) -> None:
        """Exactly one action among ``allowed``, each valid (validateHandler)."""
        if not isinstance(handler, Mapping):
            return
        known = PROBE_HANDLERS + ("sleep",)
        present = [k for k in known if handler.get(k) is not None]
        for k in present:
            if k not in allowed:
                self.err(path + (k,), f"Forbidden: {k} is not a valid handler here (allowed: {', '.join(allowed)})")
        present = [k for k in present if k in allowed]
        if not present:
            self.err(path, f"Required value: must specify a handler type (exactly one of {', '.join(allowed)})")
        for k in present[1:]:
            self.err(path + (k,), f"Forbidden: may not specify more than 1 handler type (got {', '.join(present)})")
        if not present:
            return
        kind, action = present[0], handler[present[0]]
        if not isinstance(action, Mapping):
            return
        sub = path + (kind,)
        if kind == "exec" and not action.get("command"):
            self.err(sub + ("command",), "Required value: exec needs a non-empty command")
        if kind in ("httpGet", "tcpSocket", "grpc"):
            if (problem := (_port_number(action.get("port")) if kind == "grpc" else _port_num_or_name(action.get("port")))):
                self.err(sub + ("port",), f"Invalid value {action.get('port')!r}: {problem}")
        if kind == "httpGet":
            self.enum(action.get("scheme"), ("HTTP", "HTTPS"), sub + ("scheme",))
            for i, header in enumerate(_list(action.get("httpHeaders"))):
                header_name = header.get("name") if isinstance(header, Mapping) else None
                if not isinstance(header_name, str) or not _HTTP_HEADER_NAME.match(header_name):
                    self.err(sub + ("httpHeaders", i, "name"), f"Invalid value {header_name!r}: must be a valid HTTP header name (token)")
        if kind == "sleep":
            self.sleep(action, sub)

    def sleep(self, action: Mapping[str, Any], path: tuple[Any, ...]) -> None:
        if self.version < SLEEP_ACTION:
            # Alpha (off by default) in 1.29: the server would drop the handler, leaving a hook
            # with no action. Treated as unknown, i.e. an error.
            self.err(path, f"Forbidden: the sleep action needs Kubernetes >= {_v(SLEEP_ACTION)}")
            return
        seconds = action.get("seconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            self.err(path + ("seconds",), "Required value: integer seconds")
            return
        minimum = 0 if self.version >= SLEEP_ACTION_ALLOW_ZERO else 1
        if seconds < minimum or seconds > self.grace:
            low = "non-negative" if minimum == 0 else "greater than 0"
            self.err(path + ("seconds",), f"Invalid value {seconds}: must be {low} and at most terminationGracePeriodSeconds ({self.grace})")

    def ports(self, ctr: Mapping[str, Any], path: tuple[Any, ...], host_network: bool) -> None:
        names: set[str] = set()
        for i, port in enumerate(_list(ctr.get("ports"))):
            if not isinstance(port, Mapping):
                continue
            p = path + ("ports", i)
            name = port.get("name")
            if name:
                if problem := _port_name(str(name)):
                    self.err(p + ("name",), f"Invalid value {name!r}: {problem}")
                elif name in names:
                    self.err(p + ("name",), f"Duplicate value {name!r}: port names must be unique within a container")
                names.add(name)
            if problem := _port_number(port.get("containerPort")):
                self.err(p + ("containerPort",), f"Invalid value {port.get('containerPort')!r}: {problem}")
            host_port = port.get("hostPort")
            if host_port not in (None, 0):
                if problem := _port_number(host_port):
                    self.err(p + ("hostPort",), f"Invalid value {host_port!r}: {problem}")
                elif host_network and host_port != port.get("containerPort"):
                    self.err(p + ("hostPort",), "Invalid value: must match `containerPort` when `hostNetwork` is true")
            self.enum(port.get("protocol"), ("TCP", "UDP", "SCTP"), p + ("protocol",))

    def host_ports(self, containers: list[Any], path: tuple[Any, ...], offset: int = 0) -> None:
        used: set[str] = set()
        for ci, ctr in enumerate(containers, start=offset):
            if not isinstance(ctr, Mapping):
                continue
            for pi, port in enumerate(_list(ctr.get("ports"))):
                if not isinstance(port, Mapping) or not port.get("hostPort"):
                    continue
                key = f"{port.get('protocol') or 'TCP'}/{port.get('hostIP') or ''}/{port['hostPort']}"
                if key in used:
                    self.err(path + (ci, "ports", pi, "hostPort"), f"Duplicate value {key!r}: hostPort conflicts with another container's port")
                used.add(key)

    def env_var_name(self, name: Any, path: tuple[Any, ...]) -> None:
        if not name:
            self.err(path, "Required value: environment variable name")
            return
        name = str(name)
        if self.version >= RELAXED_ENV_VAR_NAMES:
            if "=" in name or any(not 32 <= ord(c) <= 126 for c in name):
                self.err(path, f"Invalid value {name!r}: must consist of printable ASCII characters except '='")
        elif not _ENV_VAR_NAME.match(name):
            self.err(path, f"Invalid value {name!r}: a valid environment variable name must match [-._a-zA-Z][-._a-zA-Z0-9]*")

    def env_var(self, env: Any, path: tuple[Any, ...]) -> None:
        # Duplicate names are legal (the API server only warns; the last one wins).
        if not isinstance(env, Mapping):
            return
        self.env_var_name(env.get("name"), path + ("name",))
        value_from = env.get("valueFrom")
        if value_from is None:
            return
        vf_path = path + ("valueFrom",)
        sources = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef") if value_from.get(k) is not None]
        if not sources:
            self.err(vf_path, "Invalid value: must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")
        elif env.get("value"):
            self.err(vf_path, "Invalid value: may not be specified when `value` is not empty")
        elif len(sources) > 1:
            self.err(vf_path, f"Invalid value: may not have more than one field specified at a time (got {', '.join(sources)})")
        if value_from.get("fieldRef") is not None:
            self.field_ref(value_from["fieldRef"], ENV_FIELD_PATHS, vf_path + ("fieldRef",))
        if value_from.get("resourceFieldRef") is not None:
            self.resource_field_ref(value_from["resourceFieldRef"], vf_path + ("resourceFieldRef",), volume=False)
        for key in ("configMapKeyRef", "secretKeyRef"):
            ref = value_from.get(key)
            if isinstance(ref, Mapping):
                if problem := _dns1123_subdomain(str(ref.get("name") or "")):
                    self.err(vf_path + (key, "name"), f"Invalid value {ref.get('name')!r}: {problem}")
                if not ref.get("key"):
                    self.err(vf_path + (key, "key"), "Required value")
                elif problem := _config_map_key(str(ref["key"])):
                    self.err(vf_path + (key, "key"), f"Invalid value {ref['key']!r}: {problem}")

    def env_from(self, src: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(src, Mapping):
            return
        if src.get("prefix"):
            self.env_var_name(src["prefix"], path + ("prefix",))
        refs = [k for k in ("configMapRef", "secretRef") if src.get(k) is not None]
        if len(refs) != 1:
            self.err(path, "Invalid value: must specify exactly one of: `configMapRef` or `secretRef`")
        for key in refs:
            if isinstance(src[key], Mapping):
                name = src[key].get("name")
                if not name:
                    self.err(path + (key, "name"), "Required value")
                elif problem := _dns1123_subdomain(str(name).removesuffix("-") or "a"):
                    self.err(path + (key, "name"), f"Invalid value {name!r}: {problem}")

    def field_ref(self, ref: Any, allowed: frozenset[str], path: tuple[Any, ...]) -> None:
        if not isinstance(ref, Mapping):
            return
        api_version = ref.get("apiVersion") or "v1"  # defaulted to v1
        if api_version != "v1":
            self.err(path + ("apiVersion",), f"Invalid value {api_version!r}: only v1 field labels are supported for Pods")
            return
        field_path = ref.get("fieldPath")
        if not field_path:
            self.err(path + ("fieldPath",), "Required value")
            return
        if match := _SUBSCRIPTED.match(str(field_path)):
            which, key = match.groups()
            problem = _qualified_name(key.lower() if which.endswith("annotations") else key)
            if problem:
                self.err(path + ("fieldPath",), f"Invalid value {field_path!r}: subscript {problem}")
            return
        if "[" in str(field_path):
            self.err(path + ("fieldPath",), f"Invalid value {field_path!r}: only metadata.labels and metadata.annotations support a subscript")
        elif field_path not in allowed:
            self.err(path + ("fieldPath",), f"Unsupported value {field_path!r}: supported values: {', '.join(sorted(allowed))}, metadata.labels['<key>'], metadata.annotations['<key>']")

    def resource_field_ref(self, ref: Any, path: tuple[Any, ...], volume: bool) -> None:
        if not isinstance(ref, Mapping):
            return
        resource = ref.get("resource")
        if volume and not ref.get("containerName"):
            self.err(path + ("containerName",), "Required value: a downwardAPI volume must name the container")
        elif not resource:
            self.err(path + ("resource",), "Required value")
        elif resource not in RESOURCE_FIELD_PATHS and not str(resource).startswith(("requests.hugepages-", "limits.hugepages-")):
            self.err(path + ("resource",), f"Unsupported value {resource!r}: supported values: {', '.join(sorted(RESOURCE_FIELD_PATHS))}")

    def volume_mounts(self, ctr: Mapping[str, Any], path: tuple[Any, ...], volumes: dict[str, Mapping[str, Any]], ephemeral: bool) -> None:
        mount_paths: set[str] = set()
        mounts = _list(ctr.get("volumeMounts"))
        privileged = isinstance(ctr.get("securityContext"), Mapping) and ctr["securityContext"].get("privileged") is True
        for i, mount in enumerate(mounts):
            if not isinstance(mount, Mapping):
                continue
            p = path + ("volumeMounts", i)
            name = mount.get("name")
            if not name:
                self.err(p + ("name",), "Required value")
            elif name not in volumes:
                self.err(p + ("name",), f"Not found: {name!r} does not name a volume in spec.volumes")
            mount_path = mount.get("mountPath")
            if not mount_path:
                self.err(p + ("mountPath",), "Required value")
            elif mount_path in mount_paths:
                self.err(p + ("mountPath",), f"Invalid value {mount_path!r}: must be unique within the container")
            mount_paths.add(mount_path)
            sub_path, sub_expr = mount.get("subPath"), mount.get("subPathExpr")
            for key, value in (("subPath", sub_path), ("subPathExpr", sub_expr)):
                if value and (problem := _local_path(str(value))):
                    self.err(p + (key,), f"Invalid value {value!r}: {problem}")
                if value and ephemeral:
                    self.err(p + (key,), "Forbidden: cannot be set for an Ephemeral Container")
            if sub_path and sub_expr:
                self.err(p + ("subPathExpr",), "Invalid value: subPathExpr and subPath are mutually exclusive")
            propagation = mount.get("mountPropagation")
            self.enum(propagation, ("None", "HostToContainer", "Bidirectional"), p + ("mountPropagation",))
            if propagation == "Bidirectional" and not privileged:
                self.err(p + ("mountPropagation",), "Forbidden: Bidirectional mount propagation is available only to privileged containers")
            rro = mount.get("recursiveReadOnly")
            self.enum(rro, ("Disabled", "IfPossible", "Enabled"), p + ("recursiveReadOnly",))
            if rro in ("IfPossible", "Enabled") and mount.get("readOnly") is not True:
                self.err(p + ("recursiveReadOnly",), "Forbidden: may only be specified when readOnly is true")
        devices = _list(ctr.get("volumeDevices"))
        device_paths: set[str] = set()
        for i, device in enumerate(devices):
            if not isinstance(device, Mapping):
                continue
            p = path + ("volumeDevices", i)
            name, device_path = device.get("name"), device.get("devicePath")
            vol = volumes.get(str(name)) if name else None
            if vol is None:
                self.err(p + ("name",), f"Not found: {name!r} does not name a volume in spec.volumes")
            elif vol.get("persistentVolumeClaim") is None and vol.get("ephemeral") is None:
                self.err(p + ("name",), "Invalid value: block devices need a persistentVolumeClaim or ephemeral volume")
            if not device_path:
                self.err(p + ("devicePath",), "Required value")
            elif device_path in device_paths or device_path in mount_paths:
                self.err(p + ("devicePath",), f"Invalid value {device_path!r}: must be unique across volumeMounts and volumeDevices")
            device_paths.add(device_path)
            if any(isinstance(m, Mapping) and m.get("name") == name for m in mounts):
                self.err(p + ("name",), f"Invalid value {name!r}: must not already exist in volumeMounts")

    def resources(self, resources: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(resources, Mapping):
            return
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
        for field, values in (("limits", limits), ("requests", requests)):
            if not isinstance(values, Mapping):
                continue
            for name, raw in values.items():
                p = path + (field, name)
                self.container_resource_name(str(name), p)
                quantity = parse_quantity(raw)
                if quantity is None:
                    self.err(p, f"Invalid value {raw!r}: not a valid resource quantity")
                elif quantity < 0:
                    self.err(p, f"Invalid value {raw!r}: must be greater than or equal to 0")
                elif not _native_resource(str(name)) and quantity % 1 != 0:
                    self.err(p, f"Invalid value {raw!r}: must be an integer (extended resource)")
                else:
                    parsed[field][str(name)] = quantity
        for name, request in parsed["requests"].items():
            limit = parsed["limits"].get(name)
            overcommit = _overcommit_allowed(name)
            if limit is None:
                if not overcommit:
                    self.err(path + ("limits",), f"Required value: limit must be set for non overcommitable resource {name}")
            elif not overcommit and request != limit:
                self.err(path + ("requests",), f"Invalid value {requests[name]!r}: must be equal to {name} limit of {limits[name]}")
            elif request > limit:
                self.err(path + ("requests",), f"Invalid value {requests[name]!r}: must be less than or equal to {name} limit of {limits[name]}")

    def container_resource_name(self, name: str, path: tuple[Any, ...]) -> None:
        if problem := _qualified_name(name):
            self.err(path, f"invalid resource name: {problem}")
        elif "/" not in name and name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            self.err(path, f"Invalid value {name!r}: must be a standard resource for containers (cpu, memory, ephemeral-storage, hugepages-<size>) or a domain-prefixed extended resource")

    def security_context(self, sc: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(sc, Mapping):
            return
        self.id_range(sc.get("runAsUser"), path + ("runAsUser",))
        self.id_range(sc.get("runAsGroup"), path + ("runAsGroup",))
        self.seccomp(sc.get("seccompProfile"), path + ("seccompProfile",))
        self.enum(sc.get("procMount"), ("Default", "Unmasked"), path + ("procMount",))
        if sc.get("allowPrivilegeEscalation") is False:
            if sc.get("privileged") is True:
                self.err(path, "Invalid value: cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
            caps = sc.get("capabilities") if isinstance(sc.get("capabilities"), Mapping) else {}
            if "CAP_SYS_ADMIN" in _list(caps.get("add")):
                self.err(path, "Invalid value: cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")

    def pod_resources(self, spec: Mapping[str, Any], containers: list[Any], init_containers: list[Any]) -> None:
        """spec.resources (pod-level requests/limits) must cover what the containers ask.

        Only from 1.34 (PodLevelResources beta): before 1.32 the field is unknown (the strict
        schema rejects it) and in 1.32-1.33 the disabled gate makes the server drop it.
        """
        path = ("spec", "resources")
        if self.version < POD_LEVEL_RESOURCES:
            return
        resources = spec.get("resources")
        if not isinstance(resources, Mapping):
            return
        for field in ("limits", "requests"):
            for name in (resources.get(field) or {}):
                if name not in ("cpu", "memory"):
                    self.err(path + (field, name), f"Unsupported value {name!r}: pod-level resources support cpu and memory only")
        pod_limits = {k: parse_quantity(v) for k, v in (resources.get("limits") or {}).items()}
        # Unset pod-level requests default to the pod-level limits.
        pod_requests = dict(pod_limits) | {k: parse_quantity(v) for k, v in (resources.get("requests") or {}).items()}
        for name, pod_request in pod_requests.items():
            aggregate = _aggregate_requests(containers, init_containers, name)
            if pod_request is not None and aggregate > pod_request:
                self.err(path + ("requests", name), f"Invalid value: must be greater than or equal to aggregate container requests of {aggregate}")
        for i, ctr in enumerate(containers):
            for name, limit in _container_quantities(ctr, "limits").items():
                pod_limit = pod_limits.get(name)
                if pod_limit is not None and limit > pod_limit:
                    self.err(("spec", "containers", i, "resources", "limits", name), f"Invalid value: must be less than or equal to pod limits of {pod_limit}")


def _v(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    """Native resources (unprefixed or kubernetes.io/) but hugepages may have requests below limits."""
    return _native_resource(name) and not name.startswith("hugepages-")


def _container_quantities(ctr: Any, field: str) -> dict[str, Decimal]:
    if not isinstance(ctr, Mapping) or not isinstance(ctr.get("resources"), Mapping):
        return {}
    values = ctr["resources"].get(field) or {}
    out = {}
    for name, raw in values.items():
        quantity = parse_quantity(raw)
        if quantity is not None:
            out[str(name)] = quantity
    return out


def _effective_request(ctr: Any, name: str) -> Decimal:
    """A container's request for ``name`` after defaulting (an unset request defaults to the limit)."""
    requests = _container_quantities(ctr, "requests")
    if name in requests:
        return requests[name]
    return _container_quantities(ctr, "limits").get(name, Decimal(0))


def _aggregate_requests(containers: list[Any], init_containers: list[Any], name: str) -> Decimal:
    """What the scheduler reserves for ``name``: regular + sidecar containers, or a larger init phase."""
    sidecars_so_far = Decimal(0)
    init_peak = Decimal(0)
    for ctr in init_containers:
        request = _effective_request(ctr, name)
        if isinstance(ctr, Mapping) and ctr.get("restartPolicy") == "Always":
            sidecars_so_far += request
            init_peak = max(init_peak, sidecars_so_far)
        else:
            init_peak = max(init_peak, sidecars_so_far + request)
    steady = sum((_effective_request(c, name) for c in containers), Decimal(0)) + sidecars_so_far
    return max(steady, init_peak)


def semantic_errors(pod: dict, version: tuple[int, int] = (1, 30)) -> list[str]:
    """API-server rules (validation.go) that JSON schemas miss, for Kubernetes ``version``; [] when valid.

    ``pod`` is a Pod or a pod template (metadata + spec); name/generateName are optional.
    Each message is "<field path>: <what is wrong>".
    """
    if not isinstance(pod, Mapping):
        return ["<root>: must be an object"]
    checker = _Checker(version)
    checker.metadata(pod.get("metadata"))
    checker.spec(pod.get("spec"))
    return checker.errors


# --------------------------------------------------------------------------- together


def _as_pod(pod: dict) -> dict:
    """The object to schema-validate: apiVersion/kind added when missing (input untouched)."""
    if pod.get("apiVersion") and pod.get("kind"):
        return pod
    return {"apiVersion": "v1", "kind": "Pod", **{k: v for k, v in pod.items() if k not in ("apiVersion", "kind")}}


def _major_minor(version: str) -> tuple[int, int]:
    major, minor = kv_utils.major_minor(version.removeprefix("v")).split(".")[:2]
    return int(major), int(minor)


def pod_errors(pod: dict, version: str = "1.30") -> list[str]:
    """Everything the API server of ``version`` would reject in ``pod``: strict schema + semantic rules."""
    return schema_errors(_as_pod(pod), version) + [f"semantic {_v(_major_minor(version))}: {e}" for e in semantic_errors(pod, _major_minor(version))]


def _unique(items: Iterable[str]) -> Iterator[str]:
    seen: set[str] = set()
    for item in items:
        if item not in seen:
            seen.add(item)
            yield item


def assert_valid_pod(pod: dict, versions: Iterable[str] = SCHEMA_VERSIONS) -> None:
    """Raise AssertionError listing every error, for every Kubernetes version in ``versions``."""
    errors = list(_unique(e for v in versions for e in pod_errors(pod, v)))
    if errors:
        name = (pod.get("metadata") or {}).get("name") or (pod.get("metadata") or {}).get("generateName") or "<unnamed>"
        details = "\n  ".join(errors)
        raise AssertionError(f"Pod {name} would be rejected by the API server ({len(errors)} errors):\n  {details}\n{json.dumps(pod, indent=1)[:2000]}")
