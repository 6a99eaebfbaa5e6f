"""What the cluster-aware tests share: the RBAC of manifests/overlays/cluster-aware applied to the
cluster, a kubeconfig of the webhook's own ServiceAccount (so every test runs with exactly the
permissions the overlay grants, no more), and webhook processes on this host using it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .cluster import REPO, Kubectl, wait_for, wait_terminated, webhook_cli

INSTALL_NAMESPACE = "sidecar-injector"
SERVICE_ACCOUNT = f"system:serviceaccount:{INSTALL_NAMESPACE}:sidecar-injector"
RBAC_KINDS = ("Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")


def local_only() -> None:
    if os.environ.get("E2E_MODE", "in-cluster") != "local":
        pytest.skip("runs webhook processes on this host with the overlay's RBAC: needs E2E_MODE=local")


def overlay_rbac() -> list[dict[str, Any]]:
    """The namespace, ServiceAccount and RBAC objects of manifests/overlays/cluster-aware."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH to build the overlay (kubectl kustomize)")
    built = Kubectl(kubectl).run("kustomize", str(REPO / "manifests" / "overlays" / "cluster-aware")).stdout
    return [obj for obj in yaml.safe_load_all(built) if obj and obj["kind"] in RBAC_KINDS]


@contextmanager
def applied_rbac(kube: Kubectl) -> Iterator[list[dict[str, Any]]]:
    objects = overlay_rbac()
    wait_terminated(kube, "namespace", INSTALL_NAMESPACE)
    existed = kube.exists("namespace", INSTALL_NAMESPACE)
    kube.run("apply", "-f", "-", input=_list(objects))
    try:
        yield objects
    finally:
        cluster_scoped = [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
        kube.run("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=_list(cluster_scoped), check=False)
        if not existed:
            kube.run("delete", "namespace", INSTALL_NAMESPACE, "--ignore-not-found", "--wait=false", check=False)


def _list(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def service_account_kubeconfig(kube: Kubectl, path: Path, namespace: str = INSTALL_NAMESPACE,
                               account: str = "sidecar-injector") -> Path:
    """A kubeconfig that authenticates as the ServiceAccount (its token Secret, Kubernetes 1.20-1.23;
    a TokenRequest where no such Secret is made)."""
    token = _token(kube, namespace, account)
    current = json.loads(kube.run("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cluster = current["clusters"][0]["cluster"]
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "sa",
              "clusters": [{"name": "c", "cluster": cluster}],
              "users": [{"name": account, "user": {"token": token}}],
              "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account}}]}
    path.write_text(json.dumps(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def _token(kube: Kubectl, namespace: str, account: str) -> str:
    def from_secret() -> str | None:
        found = kube.get("serviceaccount", account, "-n", namespace).get("secrets") or []
        for ref in found:
            secret = kube.get("secret", ref["name"], "-n", namespace)
            if secret.get("type") == "kubernetes.io/service-account-token" and "token" in (secret.get("data") or {}):
                return base64.b64decode(secret["data"]["token"]).decode()
        return None

    version = json.loads(kube.run("version", "-o", "json").stdout)["serverVersion"]
    if int(version["minor"].rstrip("+")) >= 24:
        return kube.run("create", "token", account, "-n", namespace, "--duration=2h").stdout.strip()
    return wait_for(f"the token of ServiceAccount {namespace}/{account}", from_secret, timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Webhook:
    """`sidecar-injector serve` on 127.0.0.1 with the given kubeconfig and flags."""

    port: int
    cert_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/mutate"

    def get(self, path: str) -> tuple[int, str]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # what it serves changes under auto-TLS; checked separately
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}{path}", context=context, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def served_certificate(self) -> bytes:
        pem = ssl.get_server_certificate(("127.0.0.1", self.port))
        return pem.encode()

    def metric(self, name: str, **labels: str) -> float | None:
        _, text = self.get("/metrics")
        for line in text.splitlines():
            if not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] != name:
                continue
            if all(f'{key}="{val}"' in head for key, val in labels.items()):
                return float(value)
        return None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_webhook(workdir: Path, kubeconfig: Path, config: Path, *flags: str, dev_certs: bool = True) -> Webhook:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cert_dir = workdir / "certs"
    if dev_certs:
        webhook_cli("certs", "--out", str(cert_dir), "--host", "127.0.0.1")
    log = workdir / "webhook.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("POD_NAMESPACE", None)
    command = [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--cert-dir", str(cert_dir), "--config", str(config), "--drain-seconds", "0",
               "--reload-interval", "0.5", "--cluster-namespace", INSTALL_NAMESPACE, *flags]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env)
    webhook = Webhook(port, cert_dir, log, process)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"webhook exited with {process.returncode}:\n{webhook.log_text()}")
        try:
            if webhook.get("/healthz")[0] == 200:
                return webhook
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"webhook did not answer /healthz in 30s:\n{webhook.log_text()}")
        time.sleep(0.2)


def webhook_configuration(name: str, url: str, selector: dict[str, str], ca_bundle: str | None = None,
                          failure_policy: str = "Fail") -> dict[str, Any]:
    client: dict[str, Any] = {"url": url}
    if ca_bundle:
        client["caBundle"] = ca_bundle
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": "inject.sidecar-injector.io", "admissionReviewVersions": ["v1"],
                          "sideEffects": "NoneOnDryRun", "clientConfig": client, "failurePolicy": failure_policy,
                          "timeoutSeconds": 5, "namespaceSelector": {"matchLabels": selector},
                          "objectSelector": {"matchExpressions": [
                              {"key": "sidecar-injector.io/inject", "operator": "NotIn", "values": ["false"]}]},
                          "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                                     "operations": ["CREATE"], "scope": "Namespaced"}]}]}
