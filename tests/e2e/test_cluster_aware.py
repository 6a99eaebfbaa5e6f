"""The cluster-aware features against a real API server, run with exactly the RBAC that
manifests/overlays/cluster-aware grants (the webhook process authenticates as its ServiceAccount):
Events for every decision, namespace defaults, the detected Kubernetes version, what a missing
permission costs (a log line and a metric, never a review), and `sidecar-injector report`.
Auto-TLS has its own file (test_auto_tls.py)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .aware import (
    INSTALL_NAMESPACE,
    SERVICE_ACCOUNT,
    Webhook,
    applied_rbac,
    local_only,
    service_account_kubeconfig,
    start_webhook,
    webhook_configuration,
)
from .cluster import REPO, Kubectl, deployment, e2e_config_text, pod, wait_for

pytestmark = pytest.mark.e2e

STATUS = "sidecar-injector.io/status"
WEBHOOK_NAME = "sidecar-injector-e2e-aware"


@pytest.fixture(scope="module")
def rbac(kube: Kubectl) -> Iterator[list[dict[str, Any]]]:
    local_only()
    with applied_rbac(kube) as objects:
        yield objects


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aware")


@pytest.fixture(scope="module")
def config_file(workdir: Path, version: tuple[int, int]) -> Path:
    text = e2e_config_text(version).replace(f'kubernetesVersion: "{version[0]}.{version[1]}"', "kubernetesVersion: auto")
    path = workdir / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def label() -> dict[str, str]:
    return {"e2e-aware": secrets.token_hex(4)}


@pytest.fixture(scope="module")
def aware(kube: Kubectl, rbac: Any, workdir: Path, config_file: Path, label: dict[str, str]) -> Iterator[Webhook]:
    kubeconfig = service_account_kubeconfig(kube, workdir / "sa.kubeconfig")
    webhook = start_webhook(workdir / "aware", kubeconfig, config_file, "--events", "--namespace-defaults")
    ca = (webhook.cert_dir / "ca.crt").read_bytes()
    import base64

    kube.apply(webhook_configuration(WEBHOOK_NAME, webhook.url, label, base64.b64encode(ca).decode()))
    try:
        yield webhook
    finally:
        kube.run("delete", "mutatingwebhookconfiguration", WEBHOOK_NAME, "--ignore-not-found", check=False)
        webhook.stop()


@pytest.fixture(scope="module")
def namespace(kube: Kubectl, aware: Webhook, label: dict[str, str]) -> Iterator[str]:
    name = f"sie2e-aware-{secrets.token_hex(3)}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": label}})
    try:
        wait_for(f"the default ServiceAccount in {name}", lambda: kube.exists("serviceaccount", "default", "-n", name),
                 timeout=60)

        def injects() -> bool:
            done = kube.create(pod("probe", name), "--dry-run=server", "-o", "json", check=False)
            return done.returncode == 0 and STATUS in (json.loads(done.stdout)["metadata"].get("annotations") or {})

        wait_for("the aware webhook to inject", injects, timeout=120, interval=2)
        yield name
    finally:
        kube.run("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


def _events(kube: Kubectl, namespace: str, **fields: str) -> list[dict[str, Any]]:
    selector = ",".join(f"involvedObject.{key}={value}" for key, value in fields.items())
    return kube.get("events", "-n", namespace, "--field-selector", selector)["items"]


def _ours(events: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    return [e for e in events if e["reason"] == reason and e["source"].get("component") == "sidecar-injector"]


# -- RBAC ------------------------------------------------------------------------------------------

CAN = [  # (verb, resource, namespace or None): what each feature needs
    ("create", "secrets", INSTALL_NAMESPACE),
    ("get", "secrets/sidecar-injector-auto-tls", INSTALL_NAMESPACE),
    ("update", "secrets/sidecar-injector-auto-tls", INSTALL_NAMESPACE),
    ("watch", "secrets/sidecar-injector-auto-tls", INSTALL_NAMESPACE),
    ("create", "leases.coordination.k8s.io", INSTALL_NAMESPACE),
    ("update", "leases.coordination.k8s.io", INSTALL_NAMESPACE),
    ("list", "leases.coordination.k8s.io", INSTALL_NAMESPACE),
    ("delete", "leases.coordination.k8s.io", INSTALL_NAMESPACE),
    ("get", "mutatingwebhookconfigurations.admissionregistration.k8s.io/sidecar-injector", None),
    ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/sidecar-injector", None),
    ("create", "events", "default"),
    ("patch", "events", "kube-public"),
    ("get", "pods", "default"),
    ("list", "namespaces", None),
    ("watch", "namespaces", None),
    ("list", "nodes", None),
]
CANNOT = [  # and what it must not be able to do
    ("get", "secrets/someone-elses", INSTALL_NAMESPACE),
    ("list", "secrets", "default"),
    ("delete", "secrets/sidecar-injector-auto-tls", INSTALL_NAMESPACE),
    ("create", "leases.coordination.k8s.io", "default"),
    ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/another-webhook", None),
    ("update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/sidecar-injector", None),
    ("delete", "events", "default"),
    ("list", "pods", "default"),
    ("create", "pods", "default"),
    ("get", "namespaces/default", None),
    ("update", "namespaces", None),
    ("get", "nodes/some-node", None),
    ("get", "configmaps", INSTALL_NAMESPACE),
]


def _can(kube: Kubectl, verb: str, resource: str, namespace: str | None) -> bool:
    scope = ["-n", namespace] if namespace else []
    done = kube.run("auth", "can-i", verb, resource, *scope, "--as", SERVICE_ACCOUNT, check=False)
    return done.stdout.strip() == "yes"


def test_the_overlay_grants_each_feature_exactly_what_it_needs(kube: Kubectl, rbac: Any) -> None:
    granted = [(verb, resource, ns) for verb, resource, ns in CAN if not _can(kube, verb, resource, ns)]
    assert granted == [], "permissions a feature needs are missing"
    extra = [(verb, resource, ns) for verb, resource, ns in CANNOT if _can(kube, verb, resource, ns)]
    assert extra == [], "permissions no feature needs are granted"


# -- Events ----------------------------------------------------------------------------------------


def test_a_deployments_pods_are_one_aggregated_event_on_its_replicaset(kube: Kubectl, namespace: str) -> None:
    kube.apply(deployment("web", namespace, replicas=3))
    kube.run("rollout", "status", "deployment/web", "-n", namespace, "--timeout=120s", timeout=140)
    [replica_set] = kube.get("replicasets", "-n", namespace, "-l", "e2e=web")["items"]
    name = replica_set["metadata"]["name"]

    def aggregated() -> list[dict[str, Any]] | None:
        found = _ours(_events(kube, namespace, kind="ReplicaSet", name=name), "Injected")
        return found if found and sum(e["count"] for e in found) >= 3 else None

    events = wait_for("the ReplicaSet's Injected Event with count 3", aggregated, timeout=30)
    assert len(events) == 1, "the same reason and message is one Event with a count"
    assert events[0]["type"] == "Normal" and events[0]["involvedObject"]["uid"] == replica_set["metadata"]["uid"]
    assert "injecting profiles proxy" in events[0]["message"]
    described = kube.run("describe", "replicaset", name, "-n", namespace).stdout
    assert "Injected" in described and "sidecar-injector" in described


def test_a_bare_pod_gets_its_event_with_its_uid(kube: Kubectl, namespace: str) -> None:
    kube.create(pod("bare", namespace))
    uid = kube.get("pod", "bare", "-n", namespace)["metadata"]["uid"]
    events = wait_for("the Pod's Injected Event", lambda: _ours(_events(kube, namespace, kind="Pod", name="bare"),
                                                                "Injected") or None, timeout=30)
    assert events[0]["involvedObject"]["uid"] == uid
    assert "Injected" in kube.run("describe", "pod", "bare", "-n", namespace).stdout


def test_a_denied_and_a_skipped_pod_get_theirs(kube: Kubectl, namespace: str) -> None:
    denied = pod("refused", namespace, annotations={"sidecar-injector.io/drain-seconds": "abc"})
    assert kube.create(denied, check=False).returncode != 0
    skipped = pod("left-alone", namespace, annotations={"sidecar-injector.io/inject": "false"})
    kube.create(skipped)
    [event] = wait_for("the InjectionDenied Event", lambda: _ours(
        _events(kube, namespace, kind="Pod", name="refused"), "InjectionDenied") or None, timeout=30)
    assert event["type"] == "Warning" and "drain-seconds='abc' is invalid" in event["message"]
    assert "uid" not in event["involvedObject"], "a denied Pod never exists"
    [event] = wait_for("the InjectionSkipped Event", lambda: _ours(
        _events(kube, namespace, kind="Pod", name="left-alone"), "InjectionSkipped") or None, timeout=30)
    assert 'not injected: the Pod sets annotation sidecar-injector.io/inject: "false"' in event["message"]


def test_a_dry_run_gets_no_event(kube: Kubectl, namespace: str, aware: Webhook) -> None:
    done = kube.create(pod("only-a-try", namespace), "--dry-run=server", "-o", "json")
    assert STATUS in json.loads(done.stdout)["metadata"]["annotations"]
    kube.create(pod("after-the-try", namespace))  # an Event written after the dry run's would have been
    wait_for("the real Pod's Event", lambda: _ours(_events(kube, namespace, kind="Pod", name="after-the-try"),
                                                   "Injected") or None, timeout=30)
    assert _events(kube, namespace, name="only-a-try") == []


# -- namespace defaults ----------------------------------------------------------------------------


def _when(probe: Any, accept: Any) -> Any:
    """For wait_for: a probe's value once ``accept`` takes it, else None."""
    def check() -> Any:
        value = probe()
        return value if accept(value) else None
    return check


def _drain(kube: Kubectl, namespace: str) -> Any:
    done = kube.create(pod("drained", namespace), "--dry-run=server", "-o", "json", check=False)
    if done.returncode != 0:
        return done.stderr
    [app] = [c for c in json.loads(done.stdout)["spec"]["containers"] if c["name"] == "app"]
    return app.get("lifecycle", {}).get("preStop")


def test_namespace_annotations_are_defaults_for_its_pods(kube: Kubectl, namespace: str, aware: Webhook) -> None:
    kube.run("annotate", "namespace", namespace, "sidecar-injector.io/drain-seconds=9", "--overwrite")
    pre_stop = wait_for("the namespace's drain-seconds to apply",
                        _when(lambda: _drain(kube, namespace), lambda p: isinstance(p, dict) and "9" in json.dumps(p)),
                        timeout=30, interval=0.5)
    assert pre_stop in ({"exec": {"command": ["sleep", "9"]}}, {"sleep": {"seconds": 9}})
    own = pod("own-drain", namespace, annotations={"sidecar-injector.io/drain-seconds": "2"})
    done = kube.create(own, "--dry-run=server", "-o", "json")
    [app] = [c for c in json.loads(done.stdout)["spec"]["containers"] if c["name"] == "app"]
    assert "9" not in json.dumps(app["lifecycle"]), "the Pod's own annotation wins"
    assert aware.metric("sidecar_injector_namespace_cache_synced") == 1


def test_an_invalid_namespace_default_denies_the_pods_relying_on_it(kube: Kubectl, namespace: str,
                                                                   aware: Webhook) -> None:
    kube.run("annotate", "namespace", namespace, "sidecar-injector.io/drain-seconds=soon", "--overwrite")
    expected = f"namespace {namespace} annotation sidecar-injector.io/drain-seconds='soon' is invalid"
    message = wait_for("the invalid default to deny", _when(lambda: _drain(kube, namespace),
                                                            lambda m: isinstance(m, str) and expected in m),
                       timeout=30, interval=0.5)
    assert 'denied the request' in message
    events = wait_for("the Warning Event on the namespace", lambda: _ours(
        _events(kube, namespace, kind="Namespace", name=namespace), "InvalidNamespaceDefaults") or None, timeout=30)
    assert events[0]["type"] == "Warning" and "soon" in events[0]["message"]
    assert aware.metric("sidecar_injector_namespace_defaults_invalid", namespace=namespace) == 1
    assert "invalid namespace defaults" in aware.log_text()
    kube.run("annotate", "namespace", namespace, "sidecar-injector.io/drain-seconds-")
    wait_for("the Pods to be admitted again", lambda: isinstance(_drain(kube, namespace), dict), timeout=30)


# -- kubernetesVersion: auto -------------------------------------------------------------------------


def test_the_version_is_read_from_the_cluster(kube: Kubectl, aware: Webhook, version: tuple[int, int],
                                              namespace: str) -> None:
    detected = f"{version[0]}.{version[1]}"
    assert aware.metric("sidecar_injector_kubernetes_version_info", version=detected, source="detected") == 1
    assert '"msg":"kubernetes version detected"' in aware.log_text()
    done = kube.create(pod("versioned", namespace), "--dry-run=server", "-o", "json")
    status = json.loads(json.loads(done.stdout)["metadata"]["annotations"][STATUS])
    assert status["native"] is (version >= (1, 29))


# -- a missing permission ----------------------------------------------------------------------------


def test_a_missing_permission_is_a_log_line_and_a_metric_never_a_failed_review(
        kube: Kubectl, workdir: Path, config_file: Path, namespace: str) -> None:
    """The namespace's default ServiceAccount has no RBAC at all: every review is still answered."""
    kubeconfig = service_account_kubeconfig(kube, workdir / "nobody.kubeconfig", namespace, "default")
    webhook = start_webhook(workdir / "nobody", kubeconfig, config_file, "--events", "--namespace-defaults")
    try:
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
            "namespace": namespace, "object": pod("x", namespace)}})
        done = subprocess.run(["curl", "-sk", "-H", "Content-Type: application/json", "--data-binary", body,
                               webhook.url], capture_output=True, text=True, timeout=30, check=True)
        assert json.loads(done.stdout)["response"]["allowed"] is True
        wait_for("the forbidden calls to be counted", lambda: webhook.metric(
            "sidecar_injector_cluster_api_errors_total", feature="namespace-defaults", reason="forbidden"),
            timeout=30)
        log = wait_for("the Events' forbidden line", _when(webhook.log_text,
                                                           lambda t: '"msg":"events: cannot create Events' in t),
                       timeout=30)
        assert "the RBAC of manifests/overlays/cluster-aware grants it" in log
        assert '"reason":"forbidden"' in log
        assert webhook.get("/readyz")[0] == 200, "no feature but auto-TLS decides readiness"
        # kubernetesVersion: auto with the Nodes unreadable: the fallback applies, and says so.
        assert "kubernetesVersion: auto, but the version cannot be read: the fallback applies" in log
        assert webhook.metric("sidecar_injector_kubernetes_version_info", version="1.30", source="fallback") == 1
    finally:
        webhook.stop()


# -- report ------------------------------------------------------------------------------------------


def _report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "webhook", "report", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_report_lists_missing_stale_and_tampered_pods(kube: Kubectl, namespace: str, config_file: Path,
                                                      workdir: Path) -> None:
    name = f"sie2e-report-{secrets.token_hex(3)}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        wait_for(f"the default ServiceAccount in {name}", lambda: kube.exists("serviceaccount", "default", "-n", name),
                 timeout=60)
        kube.apply(deployment("unguarded", name, replicas=2))  # no webhook here: created without sidecars
        forged = pod("forged", name, annotations={STATUS: json.dumps({"version": 1, "profiles": ["proxy"],
                                                                      "containers": ["proxy"], "volumes": []})})
        kube.create(forged)  # says proxy was injected; it is not there: a later webhook "removed" it
        wait_for("the Deployment's Pods", lambda: len(kube.get("pods", "-n", name, "-l", "e2e=unguarded")["items"])
                 == 2 or None, timeout=60)
        done = _report("-n", name, "--config", str(config_file), "-o", "json")
        assert done.returncode == 1, done.stderr  # something is missing
        report = json.loads(done.stdout)
        groups = {g["owner"]: g for g in report["groups"]}
        assert groups["Deployment/unguarded"]["counts"]["missing"] == 2
        assert groups["Pod/forged"]["counts"]["tampered"] == 1
        assert "removed: sidecar proxy" in groups["Pod/forged"]["pods"][0]["detail"]
        table = _report("-n", name, "--config", str(config_file))
        assert "Deployment/unguarded" in table.stdout and "2 missing" in table.stdout
    finally:
        kube.run("delete", "namespace", name, "--wait=false", check=False)
    # The aware namespace: everything injected with the current config, then stale under another.
    done = _report("-n", namespace, "--config", str(config_file), "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    totals = json.loads(done.stdout)["totals"]
    assert totals["injected"] >= 3 and totals["missing"] == 0 and totals["stale"] == 0
    changed = workdir / "changed.yaml"
    changed.write_text(config_file.read_text().replace("drainSeconds: 1", "drainSeconds: 2"), encoding="utf-8")
    totals = json.loads(_report("-n", namespace, "--config", str(changed), "-o", "json").stdout)["totals"]
    assert totals["stale"] >= 3 and totals["injected"] == 0
