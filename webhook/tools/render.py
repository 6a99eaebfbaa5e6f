"""Render the install manifests: the kustomize base plus certificates, without kustomize.

`sidecar-injector manifests` uses this module: `load_base_manifests()` reads the
objects of `manifests/` (following the kustomization's plain `resources:` list), and
`render()` returns copies with the webhook's caBundle filled, the TLS Secret added and,
optionally, the injection config, image and failurePolicy replaced. `render()` and
`dump_yaml()` are pure: no file, network or clock access.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from webhook.kubeversion import KubeVersion
from webhook.tools.version_manifests import VersionError, for_version

NAMESPACE = "sidecar-injector"
DEPLOYMENT_NAME = "sidecar-injector"
CONTAINER_NAME = "sidecar-injector"
CONFIGMAP_NAME = "sidecar-injector-config"
CONFIG_KEY = "config.yaml"
TLS_SECRET_NAME = "sidecar-injector-tls"
WEBHOOK_CONFIGURATION_NAME = "sidecar-injector"
FAILURE_POLICIES = ("Fail", "Ignore")

_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# The only kustomization keys whose meaning the renderer reproduces; anything else
# (namespace:, labels:, patches:, images:, ...) would make `kubectl apply -k` and the
# rendered output differ, so it is refused rather than silently ignored.
_PLAIN_KUSTOMIZATION_KEYS = frozenset({"apiVersion", "kind", "resources"})
_LABELS = {"app.kubernetes.io/name": "sidecar-injector", "app.kubernetes.io/part-of": "sidecar-injector"}


class ManifestError(ValueError):
    """The base manifests, or an input to render(), cannot be used; the message says why."""


def default_manifests_dir() -> Traversable:
    """The `manifests/` directory: the source checkout's, else the copy shipped in the wheel."""
    checkout = Path(__file__).resolve().parents[2] / "manifests"  # webhook/tools/render.py
    if _find_kustomization(checkout) is not None:
        return checkout
    return resources.files("webhook") / "_manifests"


def load_base_manifests(base_dir: Path | Traversable | None = None) -> list[dict[str, Any]]:
    """Read the objects that `kubectl kustomize base_dir` would emit, in `resources:` order.

    Each entry of `resources:` is a YAML file (one or more documents) or a local
    directory holding another such plain kustomization, followed recursively.
    Remote resources, generators and transformers are not supported.
    """
    root = default_manifests_dir() if base_dir is None else base_dir
    return _load_kustomization(root, seen=())


def _find_kustomization(directory: Traversable) -> Traversable | None:
    if not directory.is_dir():
        return None
    for name in _KUSTOMIZATION_FILES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _load_kustomization(directory: Traversable, seen: tuple[str, ...]) -> list[dict[str, Any]]:
    kustomization = _find_kustomization(directory)
    if kustomization is None:
        raise ManifestError(f"{directory}: no kustomization.yaml found (is this the manifests/ directory?)")
    if str(directory) in seen:
        raise ManifestError(f"{directory}: kustomization cycle through {' -> '.join(seen)}")
    seen = (*seen, str(directory))
    try:
        spec = yaml.safe_load(kustomization.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ManifestError(f"{kustomization}: not valid YAML: {exc}") from exc
    if not isinstance(spec, dict):
        raise ManifestError(f"{kustomization}: expected a mapping, got {type(spec).__name__}")
    unsupported = sorted(set(spec) - _PLAIN_KUSTOMIZATION_KEYS)
    if unsupported:
        raise ManifestError(
            f"{kustomization}: unsupported keys {unsupported}; the renderer only follows a plain"
            " `resources:` list (put transformations in an overlay)"
        )
    entries = spec.get("resources") or []
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ManifestError(f"{kustomization}: `resources` must be a list of relative paths")

    objects: list[dict[str, Any]] = []
    for entry in entries:
        if "://" in entry or entry.startswith(("/", "github.com/", "git@")):
            raise ManifestError(f"{kustomization}: resource {entry!r} is not a local relative path")
        target = _join(directory, entry)
        if target is None:
            raise ManifestError(f"{kustomization}: resource {entry!r} does not exist")
        if target.is_dir():
            objects.extend(_load_kustomization(target, seen))
        else:
            objects.extend(_load_documents(target))
    return objects


def _join(directory: Traversable, relative: str) -> Traversable | None:
    """Resolve `relative` (which may contain `..`) against a Path or a package Traversable."""
    if isinstance(directory, Path):
        target = (directory / relative).resolve()
        return target if target.exists() else None
    node = directory
    for part in Path(relative).parts:
        if part in ("", "."):
            continue
        if part == "..":
            return None  # package resources cannot step outside; the base never needs to
        node = node / part
    return node if (node.is_file() or node.is_dir()) else None


def _load_documents(path: Traversable) -> list[dict[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from exc
    objects = []
    for index, doc in enumerate(documents):
        if doc is None:
            continue
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            raise ManifestError(f"{path}: document {index} is not a Kubernetes object (apiVersion and kind)")
        objects.append(doc)
    return objects


def render(
    manifests: list[dict],
    ca_bundle_pem: bytes | None,
    tls_crt: bytes | None,
    tls_key: bytes | None,
    config_yaml: str | None = None,
    image: str | None = None,
    failure_policy: str | None = None,
    kubernetes_version: KubeVersion | None = None,
) -> list[dict]:
    """Return new objects ready to apply; `manifests` is left untouched.

    - ca_bundle_pem: PEM of the CA that signed the serving cert; base64-encoded into
      every webhook's `clientConfig.caBundle`. None leaves caBundle as it is.
    - tls_crt / tls_key: PEM serving certificate and key; both or neither. Given, a
      `kubernetes.io/tls` Secret `sidecar-injector-tls` is placed right after the
      Namespace (replacing one already in the list).
    - config_yaml: replaces `config.yaml` of the ConfigMap `sidecar-injector-config`.
    - image: replaces the image of the webhook's Deployment container.
    - failure_policy: "Fail" or "Ignore", set on every webhook.
    - kubernetes_version: the objects as that version's API server knows them
      (version_manifests.for_version); None keeps the base's (1.30 and newer).
    """
    objects = [copy.deepcopy(obj) for obj in manifests]

    if ca_bundle_pem is not None:
        ca_bundle = _b64(_require_pem(ca_bundle_pem, "ca_bundle_pem", "CERTIFICATE"))
        for webhook in _webhooks(objects):
            webhook.setdefault("clientConfig", {})["caBundle"] = ca_bundle

    if (tls_crt is None) != (tls_key is None):
        raise ManifestError("tls_crt and tls_key must be given together (or both left out)")
    if tls_crt is not None and tls_key is not None:
        secret = tls_secret(
            _require_pem(tls_crt, "tls_crt", "CERTIFICATE"), _require_pem(tls_key, "tls_key", "PRIVATE KEY")
        )
        objects = [o for o in objects if not _is(o, "Secret", TLS_SECRET_NAME, NAMESPACE)]
        position = next(
            (i + 1 for i, o in enumerate(objects) if _is(o, "Namespace", NAMESPACE, None)),
            0,
        )
        objects.insert(position, secret)

    if config_yaml is not None:
        _check_config_yaml(config_yaml)
        configmap = _only(objects, "ConfigMap", CONFIGMAP_NAME, NAMESPACE)
        configmap.setdefault("data", {})[CONFIG_KEY] = config_yaml

    if image is not None:
        if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
            raise ManifestError(f"image {image!r} is not a container image reference")
        deployment = _only(objects, "Deployment", DEPLOYMENT_NAME, NAMESPACE)
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        matching = [c for c in containers if c.get("name") == CONTAINER_NAME]
        if len(matching) != 1:
            raise ManifestError(f"Deployment {DEPLOYMENT_NAME} has no container named {CONTAINER_NAME}")
        matching[0]["image"] = image

    if failure_policy is not None:
        if failure_policy not in FAILURE_POLICIES:
            raise ManifestError(f"failure_policy {failure_policy!r} is invalid: allowed are Fail and Ignore")
        for webhook in _webhooks(objects):
            webhook["failurePolicy"] = failure_policy

    if kubernetes_version is not None:
        try:
            objects = for_version(objects, kubernetes_version)
        except VersionError as error:
            raise ManifestError(str(error)) from None
    return objects


def tls_secret(tls_crt: bytes, tls_key: bytes) -> dict[str, Any]:
    """The `kubernetes.io/tls` Secret the Deployment mounts at /etc/sidecar-injector/certs."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": TLS_SECRET_NAME, "namespace": NAMESPACE, "labels": dict(_LABELS)},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": _b64(tls_crt), "tls.key": _b64(tls_key)},
    }


def dump_yaml(objs: Iterable[dict]) -> str:
    """Multi-document YAML (`---` before each object), keys in their given order."""
    return yaml.dump_all(
        list(objs),
        Dumper=_Dumper,
        explicit_start=True,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (the ConfigMap's config.yaml) as `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _represent_str)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _require_pem(data: bytes, what: str, label: str) -> bytes:
    if isinstance(data, str):
        data = data.encode("ascii")
    if not isinstance(data, bytes | bytearray):
        raise ManifestError(f"{what} must be PEM bytes, got {type(data).__name__}")
    data = bytes(data)
    if b"-----BEGIN " not in data or label.encode() not in data:
        raise ManifestError(f"{what} is not PEM data containing a {label} block")
    return data


def _check_config_yaml(text: str) -> None:
    if not isinstance(text, str):
        raise ManifestError(f"config_yaml must be a string, got {type(text).__name__}")
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ManifestError(f"config_yaml is not valid YAML: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ManifestError("config_yaml must be a YAML mapping (defaultProfiles, profiles, ...)")


def _is(obj: dict, kind: str, name: str, namespace: str | None) -> bool:
    meta = obj.get("metadata") or {}
    return (
        obj.get("kind") == kind
        and meta.get("name") == name
        and (namespace is None or meta.get("namespace") == namespace)
    )


def _only(objects: list[dict], kind: str, name: str, namespace: str) -> dict:
    found = [o for o in objects if _is(o, kind, name, namespace)]
    if len(found) != 1:
        raise ManifestError(f"expected exactly one {kind} {namespace}/{name} in the manifests, found {len(found)}")
    return found[0]


def _webhooks(objects: list[dict]) -> list[dict]:
    configuration = next(
        (o for o in objects if _is(o, "MutatingWebhookConfiguration", WEBHOOK_CONFIGURATION_NAME, None)), None
    )
    if configuration is None or not configuration.get("webhooks"):
        raise ManifestError(f"no MutatingWebhookConfiguration {WEBHOOK_CONFIGURATION_NAME} with webhooks")
    return configuration["webhooks"]
