"""End-to-end tests against a real cluster: opt-in, and skipped with a reason when impossible.

They run only with `pytest -m e2e` (or E2E=1), and only when `kubectl` reaches an API
server (KUBECONFIG or ~/.kube/config). E2E_MODE picks how the webhook is served:

* ``in-cluster`` (default): the webhook Deployment from manifests/. If the
  MutatingWebhookConfiguration ``sidecar-injector`` already exists (scripts/e2e-kind.sh
  installed it), it is used as it is; otherwise it is installed from the rendered base
  (`sidecar-injector certs` + `manifests --cert-dir DIR --config tests/e2e/config.yaml
  --image $E2E_IMAGE --kubernetes-version <the cluster's>`, default image sidecar-injector:e2e)
  and removed afterwards. E2E_CERTS=auto-tls installs manifests/overlays/cluster-aware instead
  (the webhook makes its certificates and fills the caBundle itself).
* ``local``: `python -m webhook serve` on this host (on E2E_WEBHOOK_HOST when that is a
  loopback address, else 0.0.0.0; port E2E_WEBHOOK_PORT or a free one), registered as
  ``sidecar-injector-e2e-local`` with ``clientConfig.url: https://$E2E_WEBHOOK_HOST:PORT/mutate``; E2E_WEBHOOK_HOST is the
  address the API server reaches this host at (127.0.0.1 for scripts/local-cluster.sh, whose
  `env` command prints it; for kind: the gateway of the docker network "kind") and is added
  to the serving certificate. The webhook configuration is the shipped one rendered for the
  cluster's version (webhook/tools/version_manifests.py).

E2E_KUBECTL names the kubectl binary (default: kubectl on PATH), E2E_APP_IMAGE the busybox
image of every test container (default busybox:1.36); `scripts/local-cluster.sh env` prints
all of these for the local cluster.

Every namespace and webhook configuration a fixture creates is deleted by that fixture.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster import (
    Kubectl,
    cluster_problem,
    e2e_config_text,
    pod,
    server_version,
    wait_for,
    wait_terminated,
    webhook_cli,
)

E2E_DIR = Path(__file__).resolve().parent
STATUS = "sidecar-injector.io/status"
INSTALL_NAMESPACE = "sidecar-injector"
WEBHOOK_NAME = "sidecar-injector"
LOCAL_WEBHOOK_NAME = "sidecar-injector-e2e-local"
MODES = ("in-cluster", "local")


def _selected(config: pytest.Config) -> bool:
    if os.environ.get("E2E") == "1":
        return True
    expression = str(config.getoption("markexpr", "") or "")
    return re.search(r"(?<!not )\be2e\b", expression) is not None


@functools.cache
def _cluster_problem() -> str | None:
    return cluster_problem()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's tests unless selected and a cluster answers (checked once)."""
    mine = [item for item in items if E2E_DIR in item.path.parents]
    if not mine:
        return
    if not _selected(config):
        reason = "end-to-end test: needs a Kubernetes cluster; run `pytest -m e2e` (or set E2E=1)"
    elif (problem := _cluster_problem()) is not None:
        if os.environ.get("E2E_REQUIRED") == "1":  # CI: a cluster that is not there is a failure
            raise pytest.UsageError(f"E2E_REQUIRED=1 but there is no reachable cluster: {problem}")
        reason = f"no reachable cluster: {problem}"
    elif os.environ.get("E2E_MODE", "in-cluster") not in MODES:
        reason = f"E2E_MODE must be one of {', '.join(MODES)}, got {os.environ['E2E_MODE']!r}"
    else:
        return
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=reason))


# -- the cluster -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kube() -> Kubectl:
    return Kubectl()


@pytest.fixture(scope="session")
def version(kube: Kubectl) -> tuple[int, int]:
    return server_version(kube)


# -- the webhook, served one of two ways ---------------------------------------------------------


def _install_in_cluster(kube: Kubectl, version: tuple[int, int], workdir: Path) -> Iterator[str]:
    if kube.exists("mutatingwebhookconfiguration", WEBHOOK_NAME):
        kube.run("rollout", "status", f"deployment/{WEBHOOK_NAME}", "-n", INSTALL_NAMESPACE, "--timeout=180s",
                 timeout=200)
        yield WEBHOOK_NAME  # installed by scripts/e2e-kind.sh (or by hand): not ours to remove
        return
    wait_terminated(kube, "namespace", INSTALL_NAMESPACE)  # an earlier run's install, being removed
    config = workdir / "config.yaml"
    config.write_text(e2e_config_text(version), encoding="utf-8")
    image = os.environ.get("E2E_IMAGE", "sidecar-injector:e2e")
    if os.environ.get("E2E_CERTS", "cli") == "auto-tls":
        rendered = _cluster_aware_manifests(config, image, version)
    else:
        certs = workdir / "certs"
        webhook_cli("certs", "--out", str(certs))
        rendered = webhook_cli("manifests", "--cert-dir", str(certs), "--config", str(config), "--image", image,
                               "--kubernetes-version", f"{version[0]}.{version[1]}")
    try:
        kube.apply(rendered)
        kube.run("rollout", "status", f"deployment/{WEBHOOK_NAME}", "-n", INSTALL_NAMESPACE, "--timeout=180s",
                 timeout=200)
        yield WEBHOOK_NAME
    finally:
        # The webhook configuration first: with failurePolicy Fail, a configuration whose
        # Service is gone would block Pod creation in every labelled namespace.
        kube.run("delete", "mutatingwebhookconfiguration", WEBHOOK_NAME, "--ignore-not-found", check=False)
        kube.run("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=rendered, check=False)


def _cluster_aware_manifests(config: Path, image: str, version: tuple[int, int]) -> str:
    """manifests/overlays/cluster-aware (auto-TLS makes the certificates and fills the caBundle),
    with the e2e config and image, for the cluster's version."""
    import shutil

    import yaml

    from webhook.kubeversion import KubeVersion
    from webhook.tools.render import dump_yaml, render

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("E2E_CERTS=auto-tls builds manifests/overlays/cluster-aware with kubectl kustomize")
    built = Kubectl(kubectl).run("kustomize", str(E2E_DIR.parents[1] / "manifests" / "overlays" / "cluster-aware"))
    objects = [obj for obj in yaml.safe_load_all(built.stdout) if obj]
    return dump_yaml(render(objects, None, None, None, config_yaml=config.read_text(encoding="utf-8"), image=image,
                            kubernetes_version=KubeVersion(*version)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_webhook_configuration(url: str, ca_bundle: str, version: tuple[int, int]) -> dict[str, Any]:
    """The shipped MutatingWebhookConfiguration as rendered for the cluster's version, pointed at a URL."""
    from webhook.kubeversion import KubeVersion
    from webhook.tools.render import load_base_manifests
    from webhook.tools.version_manifests import for_version

    objects = for_version(load_base_manifests(), KubeVersion(*version))
    [base] = [obj for obj in objects if obj.get("kind") == "MutatingWebhookConfiguration"]
    configuration = copy.deepcopy(base)
    configuration["metadata"]["name"] = LOCAL_WEBHOOK_NAME
    for hook in configuration["webhooks"]:
        hook["clientConfig"] = {"url": url, "caBundle": ca_bundle}
    return configuration


def _wait_healthy(port: int, ca_file: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"webhook exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"webhook did not answer /healthz in 30s:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def _serve_locally(kube: Kubectl, version: tuple[int, int], workdir: Path) -> Iterator[str]:
    host = os.environ.get("E2E_WEBHOOK_HOST")
    if not host:
        pytest.skip("E2E_MODE=local needs E2E_WEBHOOK_HOST: the address the API server reaches this host at "
                    "(for kind: docker network inspect kind -f '{{(index .IPAM.Config 0).Gateway}}')")
    port = int(os.environ.get("E2E_WEBHOOK_PORT") or _free_port())
    certs = workdir / "certs"
    ca_bundle = webhook_cli("certs", "--out", str(certs), "--host", host).strip()
    config = workdir / "config.yaml"
    config.write_text(e2e_config_text(version), encoding="utf-8")
    log = workdir / "webhook.log"
    # Listen where the API server calls: loopback stays loopback (the local cluster's API
    # server runs on this host); any other address means another host (kind's nodes).
    bind = host if ipaddress.ip_address(host).is_loopback else "0.0.0.0"
    command = [sys.executable, "-m", "webhook", "serve", "--host", bind, "--port", str(port),
               "--cert-dir", str(certs), "--config", str(config), "--drain-seconds", "0"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_healthy(port, certs / "ca.crt", process, log)
        url = f"https://{host}:{port}/mutate"
        kube.apply(local_webhook_configuration(url, ca_bundle, version))
        yield LOCAL_WEBHOOK_NAME
    finally:
        kube.run("delete", "mutatingwebhookconfiguration", LOCAL_WEBHOOK_NAME, "--ignore-not-found", check=False)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def webhook(kube: Kubectl, version: tuple[int, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of the MutatingWebhookConfiguration serving the tests (removed after, if ours)."""
    workdir = tmp_path_factory.mktemp("webhook")
    if os.environ.get("E2E_MODE", "in-cluster") == "local":
        yield from _serve_locally(kube, version, workdir)
    else:
        yield from _install_in_cluster(kube, version, workdir)


# -- namespaces ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _namespace(kube: Kubectl, labels: dict[str, str]) -> Iterator[str]:
    name = f"sie2e-{secrets.token_hex(4)}"
    # Privileged Pod Security, so the hostPID scenario is judged by the webhook, not by a
    # cluster-wide baseline policy.
    labels = {"pod-security.kubernetes.io/enforce": "privileged", **labels}
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    try:
        wait_for(f"the default ServiceAccount in {name}", lambda: kube.exists("serviceaccount", "default", "-n", name),
                 timeout=60)
        yield name
    finally:
        kube.run("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


def _webhook_answers(kube: Kubectl, namespace: str) -> bool:
    done = kube.create(pod("e2e-probe", namespace), "--dry-run=server", "-o", "json", check=False)
    if done.returncode != 0:
        return False
    return STATUS in (json.loads(done.stdout)["metadata"].get("annotations") or {})


@pytest.fixture(scope="session")
def injected_namespace(kube: Kubectl, webhook: str) -> Iterator[str]:
    """A fresh namespace labelled sidecar-injector.io/inject=enabled, once the webhook injects there."""
    with _namespace(kube, {"sidecar-injector.io/inject": "enabled"}) as name:
        # The API server picks a new webhook configuration up within seconds, not at once.
        wait_for(f"webhook {webhook} to inject in {name}", lambda: _webhook_answers(kube, name), timeout=120,
                 interval=2)
        yield name


@pytest.fixture(scope="session")
def plain_namespace(kube: Kubectl) -> Iterator[str]:
    """A fresh namespace without the label."""
    with _namespace(kube, {}) as name:
        yield name


# -- measured timings, printed at the end of the run -----------------------------------------------

_TIMINGS: list[tuple[str, float]] = []


@pytest.fixture
def timing(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """Record a measured duration (seconds) under the test's name; printed after the run."""
    def record(what: str, seconds: float) -> None:
        _TIMINGS.append((f"{request.node.name}: {what}", seconds))
    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TIMINGS:
        return
    terminalreporter.section("e2e timings (measured on the cluster)")
    for what, seconds in _TIMINGS:
        terminalreporter.write_line(f"{seconds * 1000:9.0f} ms  {what}")
