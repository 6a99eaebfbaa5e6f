"""The kustomize base and overlays in manifests/, and the renderer in webhook/render.py.

Every object (base, rendered, and each overlay as built by `kubectl kustomize` when
kubectl is installed) must pass the Kubernetes OpenAPI schema, strictly, for the
oldest supported cluster (1.30) and the newest version kubernetes-validate ships.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from webhook.tools import render as render_mod
from webhook.tools.render import ManifestError, dump_yaml, load_base_manifests, render

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OVERLAYS = MANIFESTS / "overlays"
OVERLAY_NAMES = ("failure-ignore", "cert-manager", "cluster-aware")
NS = "sidecar-injector"
INJECT_LABEL = "sidecar-injector.io/inject"

VERSIONS = sorted({"1.30.0", kubernetes_validate.latest_version()})

BASE_KINDS = (  # in the order the base lists them
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "MutatingWebhookConfiguration",
)


# --------------------------------------------------------------------------- helpers


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata", {})
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def _one(objs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _validate(obj: dict, version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:  # pragma: no cover - failure path
        pytest.fail(f"{_key(obj)} is invalid for Kubernetes {version}: {exc.message} at {list(exc.path)}")


@functools.cache
def _test_pki() -> tuple[bytes, bytes, bytes]:
    """A throwaway CA and serving cert (EC P-256) for the renderer: (ca_pem, crt_pem, key_pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    dns = "sidecar-injector.sidecar-injector.svc"
    crt = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem), crt.public_bytes(pem), key_pem


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return load_base_manifests(MANIFESTS)


@pytest.fixture(scope="module")
def rendered(base: list[dict]) -> list[dict]:
    ca, crt, key = _test_pki()
    return render(base, ca, crt, key)


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` checks need it (no cluster needed)")
    return kubectl


@functools.cache
def _kustomize_cached(kubectl: str, directory: str) -> list[dict]:
    result = subprocess.run(
        [kubectl, "kustomize", directory], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


def _kustomize(directory: Path) -> list[dict]:
    return copy.deepcopy(_kustomize_cached(_kubectl(), str(directory)))


def _pod_template(objs: list[dict]) -> dict:
    return _one(objs, "Deployment", "sidecar-injector")["spec"]["template"]


def _container(objs: list[dict]) -> dict:
    containers = _pod_template(objs)["spec"]["containers"]
    return next(c for c in containers if c["name"] == "sidecar-injector")


def _webhook(objs: list[dict]) -> dict:
    config = _one(objs, "MutatingWebhookConfiguration", "sidecar-injector")
    assert len(config["webhooks"]) == 1
    return config["webhooks"][0]


def _selector_matches(match_labels: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in match_labels.items())


# --------------------------------------------------------------------------- layout


def test_kustomizations_are_plain_resource_lists() -> None:
    for path in (MANIFESTS / "kustomization.yaml", MANIFESTS / "base" / "kustomization.yaml"):
        spec = yaml.safe_load(path.read_text())
        assert set(spec) <= {"apiVersion", "kind", "resources"}, f"{path}: the renderer only follows resources:"
        for entry in spec["resources"]:
            assert (path.parent / entry).exists(), f"{path}: {entry} does not exist"


def test_base_has_expected_objects_and_no_secret(base: list[dict]) -> None:
    assert [o["kind"] for o in base] == list(BASE_KINDS)
    for obj in base:
        if obj["kind"] not in ("Namespace", "MutatingWebhookConfiguration"):
            assert obj["metadata"]["namespace"] == NS, _key(obj)


def test_no_key_material_in_the_repository_manifests() -> None:
    for path in MANIFESTS.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "PRIVATE KEY" not in text, path
            assert "BEGIN CERTIFICATE" not in text, path
            assert "kind: Secret" not in text, f"{path}: the TLS Secret is created by the install flow"


def test_default_manifests_dir_is_the_checkout(base: list[dict]) -> None:
    assert Path(str(render_mod.default_manifests_dir())) == MANIFESTS
    assert load_base_manifests() == base


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize("version", VERSIONS)
def test_base_manifests_pass_schema(base: list[dict], version: str) -> None:
    for obj in base:
        _validate(obj, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_rendered_manifests_pass_schema(rendered: list[dict], version: str) -> None:
    for obj in rendered:
        _validate(obj, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_fully_overridden_render_passes_schema(base: list[dict], version: str) -> None:
    ca, crt, key = _test_pki()
    objs = render(
        base, ca, crt, key, config_yaml="defaultProfiles: []\nprofiles: {}\n", image="r.example/x:1", failure_policy="Ignore"
    )
    for obj in objs:
        _validate(obj, version)


# --------------------------------------------------------------------------- webhook


def test_webhook_configuration(base: list[dict]) -> None:
    config = _one(base, "MutatingWebhookConfiguration", "sidecar-injector")
    assert "namespace" not in config["metadata"], "cluster-scoped"
    hook = _webhook(base)
    assert hook["name"] == "inject.sidecar-injector.io"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["sideEffects"] == "None"
    assert hook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "operations": ["CREATE"],
            "scope": "Namespaced",
        }
    ]
    assert hook["namespaceSelector"] == {"matchLabels": {INJECT_LABEL: "enabled"}}
    assert hook["objectSelector"] == {
        "matchExpressions": [{"key": INJECT_LABEL, "operator": "NotIn", "values": ["false"]}]
    }
    assert hook["timeoutSeconds"] == 5
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["failurePolicy"] == "Fail"
    assert hook["matchPolicy"] == "Equivalent"
    assert hook["clientConfig"] == {
        "service": {"name": "sidecar-injector", "namespace": NS, "path": "/mutate", "port": 443}
    }, "caBundle must be absent in the base so re-applying it never wipes an injected bundle"


def test_webhook_match_conditions_exclude_system_and_own_namespace(base: list[dict]) -> None:
    conditions = _webhook(base)["matchConditions"]
    names = [c["name"] for c in conditions]
    assert len(set(names)) == len(names)
    for condition in conditions:
        assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", condition["name"]), condition
        expr = condition["expression"]
        # Plausible CEL: only the admission variables, balanced parentheses, double-quoted strings.
        assert re.findall(r"\b(request|object|oldObject|authorizer)\b", expr), expr
        assert expr.count("(") == expr.count(")") and expr.count('"') % 2 == 0, expr
        assert "'" not in expr, expr
    expressions = " ".join(c["expression"] for c in conditions)
    assert '"kube-system"' in expressions and f'"{NS}"' in expressions


def test_webhook_match_conditions_evaluate_as_intended(base: list[dict]) -> None:
    """Evaluated with cel-python when it is installed (it is not a declared test dependency)."""
    try:
        import celpy
        from celpy import celtypes
    except ImportError:
        pytest.skip("cel-python (celpy) is not installed: CEL checked structurally only")
    env = celpy.Environment()
    programs = [env.program(env.compile(c["expression"])) for c in _webhook(base)["matchConditions"]]

    def admitted(namespace: str) -> bool:
        request = celtypes.MapType({celtypes.StringType("namespace"): celtypes.StringType(namespace)})
        return all(bool(p.evaluate({"request": request})) for p in programs)

    assert not admitted("kube-system")
    assert not admitted(NS)
    assert admitted("default")
    assert admitted("team-a")


def test_webhook_never_selects_its_own_namespace_or_pods(base: list[dict]) -> None:
    namespace = _one(base, "Namespace", NS)
    labels = namespace["metadata"]["labels"]
    assert labels.get(INJECT_LABEL) != "enabled"
    assert not _selector_matches(_webhook(base)["namespaceSelector"]["matchLabels"], labels)
    assert _pod_template(base)["metadata"]["labels"][INJECT_LABEL] == "false"


# --------------------------------------------------------------------------- deployment


def test_deployment_security_invariants(base: list[dict]) -> None:
    deployment = _one(base, "Deployment", "sidecar-injector")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sidecar-injector"
    assert pod["automountServiceAccountToken"] is False
    assert "priorityClassName" not in pod, "documented decision: see manifests/README.md"
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == 65532 and psc["runAsGroup"] == 65532
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")

    container = _container(base)
    assert container["image"] == "ghcr.io/sidecar-injector/sidecar-injector:0.1.0"
    assert container["args"] == [
        "--config",
        "/etc/sidecar-injector/config.yaml",
        "--cert-dir",
        "/etc/sidecar-injector/certs",
    ]
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    csc = container["securityContext"]
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert csc.get("privileged") is not True
    assert csc.get("runAsUser", 65532) != 0
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind


def test_deployment_probes(base: list[dict]) -> None:
    container = _container(base)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["scheme"] == "HTTPS" and get["port"] in ("https", 8443), probe
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_deployment_drains_before_exit(base: list[dict]) -> None:
    pod = _pod_template(base)["spec"]
    sleep = _container(base)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert sleep == 5
    # The grace period covers the preStop sleep and the server's own drain after SIGTERM.
    assert pod["terminationGracePeriodSeconds"] >= sleep + 10


def test_deployment_spreads_replicas(base: list[dict]) -> None:
    template = _pod_template(base)
    labels = template["metadata"]["labels"]
    preferred = template["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    term = preferred[0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert _selector_matches(term["labelSelector"]["matchLabels"], labels)
    for constraint in template["spec"].get("topologySpreadConstraints", []):
        assert _selector_matches(constraint["labelSelector"]["matchLabels"], labels)
    strategy = _one(base, "Deployment", "sidecar-injector")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_deployment_volumes(base: list[dict]) -> None:
    pod = _pod_template(base)["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in _container(base)["volumeMounts"]}

    certs = mounts["/etc/sidecar-injector/certs"]
    assert certs["readOnly"] is True
    assert volumes[certs["name"]]["secret"]["secretName"] == render_mod.TLS_SECRET_NAME

    config = mounts["/etc/sidecar-injector"]
    assert config["readOnly"] is True
    assert volumes[config["name"]]["configMap"]["name"] == render_mod.CONFIGMAP_NAME
    assert render_mod.CONFIG_KEY == Path(_container(base)["args"][1]).name

    tmp = mounts["/tmp"]
    assert "emptyDir" in volumes[tmp["name"]] and not tmp.get("readOnly")


def test_selectors_select_the_pods(base: list[dict]) -> None:
    labels = _pod_template(base)["metadata"]["labels"]
    deployment = _one(base, "Deployment", "sidecar-injector")
    assert _selector_matches(deployment["spec"]["selector"]["matchLabels"], labels)
    assert _selector_matches(_one(base, "Service")["spec"]["selector"], labels)
    pdb = _one(base, "PodDisruptionBudget", "sidecar-injector")
    assert _selector_matches(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"]["minAvailable"] == 1


def test_service_443_to_8443(base: list[dict]) -> None:
    service = _one(base, "Service", "sidecar-injector")
    assert service["spec"]["ports"] == [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"}]
    named = {p["name"]: p["containerPort"] for p in _container(base)["ports"]}
    assert named["https"] == 8443
    service_ref = _webhook(base)["clientConfig"]["service"]
    assert (service_ref["name"], service_ref["namespace"], service_ref["port"]) == (
        service["metadata"]["name"],
        service["metadata"]["namespace"],
        443,
    )


def test_service_account_has_no_token(base: list[dict]) -> None:
    assert _one(base, "ServiceAccount", "sidecar-injector")["automountServiceAccountToken"] is False


# --------------------------------------------------------------------------- config


def _config_text(objs: list[dict]) -> str:
    return _one(objs, "ConfigMap", "sidecar-injector-config")["data"]["config.yaml"]


def test_configmap_config_parses(base: list[dict]) -> None:
    config = yaml.safe_load(_config_text(base))
    assert config["defaultProfiles"] == ["proxy"]
    assert set(config["profiles"]) == {"proxy", "logging"}
    proxy = config["profiles"]["proxy"]
    assert {
        "containers",
        "initContainers",
        "volumes",
        "volumeMounts",
        "nativeSidecar",
        "holdApplication",
        "waitCommand",
        "drainSeconds",
        "terminationGracePeriodSeconds",
        "shareProcessNamespace",
        "podinfo",
        "probes",
        "warmupSeconds",
        "serviceAccountToken",
    } <= set(proxy)
    assert proxy["containers"][0]["name"] == "proxy"
    assert proxy["containers"][0]["image"] == "envoyproxy/envoy:v1.31.2"
    assert proxy["serviceAccountToken"] == {
        "audience": "proxy",
        "expirationSeconds": 3600,
        "mountPath": "/var/run/secrets/tokens",
    }
    logging = config["profiles"]["logging"]
    assert {"containers", "volumes", "appVolumeMounts"} <= set(logging)


def test_configmap_config_passes_the_config_model(base: list[dict]) -> None:
    try:
        from webhook.config import load_config_text
    except ModuleNotFoundError as exc:
        if exc.name != "webhook.config":
            raise
        pytest.skip("webhook.config does not exist yet: the pydantic config model validates this when it does")
    except ImportError:
        pytest.skip("webhook.config has no load_config_text yet")
    load_config_text(_config_text(base), "manifests/base/configmap.yaml config.yaml")


# --------------------------------------------------------------------------- overlays


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_overlay_files_exist(overlay: str) -> None:
    directory = OVERLAYS / overlay
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    referenced = list(spec.get("resources", []))
    referenced += [p["path"] for p in spec.get("patches", []) if "path" in p]
    assert referenced
    for entry in referenced:
        target = directory / entry
        assert target.exists(), f"{overlay}: {entry} does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{overlay}: {entry} is not a kustomization"
        else:
            list(yaml.safe_load_all(target.read_text()))  # parses


def test_kustomize_base_equals_loader(base: list[dict]) -> None:
    built = _kustomize(MANIFESTS)
    assert {_key(o): o for o in built} == {_key(o): o for o in base}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_overlay_builds_and_passes_schema(overlay: str, version: str) -> None:
    built = _kustomize(OVERLAYS / overlay)
    assert set(BASE_KINDS) <= {o["kind"] for o in built}
    for obj in built:
        if obj["apiVersion"].startswith("cert-manager.io/"):
            continue  # CRDs: kubernetes-validate has no schema; checked in test_cert_manager_overlay
        _validate(obj, version)


def test_failure_ignore_overlay(base: list[dict]) -> None:
    built = _kustomize(OVERLAYS / "failure-ignore")
    assert _webhook(built)["failurePolicy"] == "Ignore"
    # ... and nothing else differs from the base.
    expected = copy.deepcopy(base)
    _webhook(expected)["failurePolicy"] = "Ignore"
    assert {_key(o): o for o in built} == {_key(o): o for o in expected}


def test_cert_manager_overlay() -> None:
    built = _kustomize(OVERLAYS / "cert-manager")
    config = _one(built, "MutatingWebhookConfiguration", "sidecar-injector")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NS}/sidecar-injector"
    assert "caBundle" not in _webhook(built)["clientConfig"]
    assert _webhook(built)["failurePolicy"] == "Fail"

    certificates = {o["metadata"]["name"]: o for o in built if o["kind"] == "Certificate"}
    issuers = {o["metadata"]["name"]: o for o in built if o["kind"] == "Issuer"}
    for obj in [*certificates.values(), *issuers.values()]:
        assert obj["apiVersion"] == "cert-manager.io/v1"
        assert obj["metadata"]["namespace"] == NS

    serving = certificates["sidecar-injector"]["spec"]
    assert serving["secretName"] == render_mod.TLS_SECRET_NAME
    assert "sidecar-injector.sidecar-injector.svc" in serving["dnsNames"]
    assert not serving.get("isCA")
    assert "server auth" in serving["usages"]

    # Every issuerRef points at an Issuer of this overlay, and the CA Issuer's Secret
    # is the CA Certificate's.
    for certificate in certificates.values():
        ref = certificate["spec"]["issuerRef"]
        assert ref["kind"] == "Issuer" and ref["name"] in issuers
    ca_issuer = issuers[serving["issuerRef"]["name"]]["spec"]["ca"]
    ca_certs = [c for c in certificates.values() if c["spec"]["secretName"] == ca_issuer["secretName"]]
    assert len(ca_certs) == 1 and ca_certs[0]["spec"]["isCA"] is True
    assert "selfSigned" in issuers[ca_certs[0]["spec"]["issuerRef"]["name"]]["spec"]


# --------------------------------------------------------------------------- renderer


def test_render_fills_ca_bundle_and_adds_secret(base: list[dict], rendered: list[dict]) -> None:
    ca, crt, key = _test_pki()
    assert _webhook(rendered)["clientConfig"]["caBundle"] == base64.b64encode(ca).decode()
    assert base64.b64decode(_webhook(rendered)["clientConfig"]["caBundle"]) == ca

    secret = _one(rendered, "Secret", "sidecar-injector-tls")
    assert secret["metadata"]["namespace"] == NS
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["data"] == {"tls.crt": base64.b64encode(crt).decode(), "tls.key": base64.b64encode(key).decode()}
    kinds = [o["kind"] for o in rendered]
    assert kinds[:2] == ["Namespace", "Secret"], "the Secret follows its Namespace"
    assert len(rendered) == len(base) + 1


def test_render_does_not_mutate_its_input(base: list[dict]) -> None:
    before = copy.deepcopy(base)
    ca, crt, key = _test_pki()
    out = render(base, ca, crt, key, config_yaml="a: 1\n", image="x/y:2", failure_policy="Ignore")
    assert base == before
    out[0]["metadata"]["name"] = "changed"
    assert base == before, "the result shares no objects with the input"


def test_render_without_certs_keeps_the_base(base: list[dict]) -> None:
    assert render(base, None, None, None) == base


def test_render_overrides(base: list[dict]) -> None:
    config = "defaultProfiles: [logging]\nprofiles:\n  logging:\n    containers: []\n"
    out = render(base, None, None, None, config_yaml=config, image="registry.example/si:1.2.3", failure_policy="Ignore")
    assert _config_text(out) == config
    assert _container(out)["image"] == "registry.example/si:1.2.3"
    assert _webhook(out)["failurePolicy"] == "Ignore"
    assert not any(o["kind"] == "Secret" for o in out)


def test_render_replaces_an_existing_secret(rendered: list[dict]) -> None:
    ca, crt, key = _test_pki()
    again = render(rendered, ca, crt, key)
    assert [o["kind"] for o in again].count("Secret") == 1
    assert again == rendered


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tls_crt": b"only-a-cert"},
        {"tls_key": b"only-a-key"},
        {"ca_bundle_pem": b"not pem"},
        {"failure_policy": "fail"},
        {"image": ""},
        {"image": "two words"},
        {"config_yaml": "- a list\n- not a mapping\n"},
        {"config_yaml": "key: [unclosed\n"},
    ],
)
def test_render_rejects_bad_input(base: list[dict], kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"ca_bundle_pem": None, "tls_crt": None, "tls_key": None, **kwargs}
    with pytest.raises(ManifestError):
        render(base, **args)


def test_render_rejects_non_pem_cert_and_key(base: list[dict]) -> None:
    ca, crt, key = _test_pki()
    with pytest.raises(ManifestError):
        render(base, ca, key, crt)  # swapped


def test_dump_yaml_round_trips(rendered: list[dict]) -> None:
    text = dump_yaml(rendered)
    assert text.startswith("---\n")
    assert [d for d in yaml.safe_load_all(text) if d is not None] == rendered
    assert "config.yaml: |" in text, "the config stays readable as a block scalar"


# --------------------------------------------------------------------------- loader


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


NS_DOC = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"
CM_DOCS = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"


def test_loader_follows_directories_and_multi_document_files(tmp_path: Path) -> None:
    _write(tmp_path / "kustomization.yaml", "resources: [sub, z.yaml]\n")
    _write(tmp_path / "z.yaml", CM_DOCS)
    _write(tmp_path / "sub" / "kustomization.yaml", "resources: [ns.yaml]\n")
    _write(tmp_path / "sub" / "ns.yaml", "---\n" + NS_DOC)
    assert [o["metadata"]["name"] for o in load_base_manifests(tmp_path)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ("resources: [ns.yaml]\nnamespace: other\n", "unsupported keys"),
        ("resources: [missing.yaml]\n", "does not exist"),
        ("resources: [https://github.com/x/y]\n", "not a local relative path"),
        ("resources: [.]\n", "cycle"),
        ("resources: [bad.yaml]\n", "not a Kubernetes object"),
    ],
)
def test_loader_refuses_what_it_cannot_reproduce(tmp_path: Path, kustomization: str, message: str) -> None:
    _write(tmp_path / "kustomization.yaml", kustomization)
    _write(tmp_path / "ns.yaml", NS_DOC)
    _write(tmp_path / "bad.yaml", "just: a mapping\n")
    with pytest.raises(ManifestError, match=message):
        load_base_manifests(tmp_path)


def test_loader_reads_packaged_manifests(tmp_path: Path, base: list[dict]) -> None:
    """The wheel ships manifests/ as package data (a Traversable, not a Path): same result."""
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in MANIFESTS.rglob("*"):
            if path.is_file():
                zf.write(path, Path("webhook/_manifests") / path.relative_to(MANIFESTS))
    with zipfile.ZipFile(archive) as zf:
        assert load_base_manifests(zipfile.Path(zf, "webhook/_manifests/")) == base


def test_cluster_aware_overlay_turns_every_feature_on_with_its_rbac() -> None:
    """The Deployment's arguments are ones `serve` takes, and turn on each feature; each feature
    brings its RBAC; the webhook declares NoneOnDryRun (no Events for dry runs)."""
    from webhook.tools.cli import build_parser
    from webhook.tools.commands import cluster_factory

    built = _kustomize(OVERLAYS / "cluster-aware")
    container = _container(built)
    args = build_parser({}).parse_args(["serve", *container["args"]])
    options = cluster_factory(args).args[0]
    assert options.auto_tls is not None and options.events and options.namespace_defaults
    assert args.kubernetes_version == "auto" and args.cert_dir == "/tmp/certs"
    assert not any(m["name"] == "tls" for m in container["volumeMounts"]), "auto-TLS needs no CLI-made Secret"
    assert _pod_template(built)["spec"]["automountServiceAccountToken"] is True
    assert _webhook(built)["sideEffects"] == "NoneOnDryRun"
    roles = {o["metadata"]["name"] for o in built if o["kind"] in ("Role", "ClusterRole")}
    assert roles == {"sidecar-injector-auto-tls", "sidecar-injector-events", "sidecar-injector-namespace-defaults",
                     "sidecar-injector-kubernetes-version"}
    bindings = [o for o in built if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert len(bindings) == 5
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "sidecar-injector", "namespace": NS}]
               for b in bindings)
