"""The webhook installed as operators install it (E2E_MODE=in-cluster): the shipped manifests,
rendered for the cluster's version, two replicas behind their Service, the image built by
scripts/build-image.sh (or the Dockerfile); with E2E_CERTS=auto-tls, the cluster-aware overlay."""

from __future__ import annotations

import base64
import os
import ssl
from typing import Any

import pytest

from .cluster import Kubectl, wait_for

pytestmark = pytest.mark.e2e

NAMESPACE = "sidecar-injector"
SELECTOR = "app.kubernetes.io/name=sidecar-injector,app.kubernetes.io/component=webhook"


@pytest.fixture(scope="module")
def replicas(kube: Kubectl, webhook: str) -> list[dict[str, Any]]:
    if os.environ.get("E2E_MODE", "in-cluster") != "in-cluster":
        pytest.skip("the webhook runs as a Deployment only with E2E_MODE=in-cluster")
    kube.run("rollout", "status", "deployment/sidecar-injector", "-n", NAMESPACE, "--timeout=180s", timeout=200)
    pods = kube.get("pods", "-n", NAMESPACE, "-l", SELECTOR)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_two_ready_replicas_behind_the_service(kube: Kubectl, replicas: list[dict[str, Any]]) -> None:
    assert len(replicas) == 2
    endpoints = kube.get("endpoints", "sidecar-injector", "-n", NAMESPACE)
    ready = [a["ip"] for subset in endpoints.get("subsets") or [] for a in subset.get("addresses") or []]
    assert sorted(ready) == sorted(p["status"]["podIP"] for p in replicas)
    [hook] = kube.get("mutatingwebhookconfiguration", "sidecar-injector")["webhooks"]
    assert hook["clientConfig"]["service"] == {"name": "sidecar-injector", "namespace": NAMESPACE,
                                               "path": "/mutate", "port": 443}


def test_it_runs_as_65532_with_a_read_only_root_filesystem(kube: Kubectl, replicas: list[dict[str, Any]]) -> None:
    for replica in replicas:
        name = replica["metadata"]["name"]
        [container] = replica["spec"]["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert kube.run("exec", name, "-n", NAMESPACE, "--", "id", "-u").stdout.strip() == "65532"
        root = kube.run("exec", name, "-n", NAMESPACE, "--", "touch", "/app/probe", check=False)
        assert root.returncode != 0 and "Read-only file system" in root.stderr
        kube.run("exec", name, "-n", NAMESPACE, "--", "touch", "/tmp/probe")  # the writable emptyDir


def test_with_auto_tls_the_replicas_serve_the_secrets_pair_and_the_bundle_holds_its_ca(
        kube: Kubectl, replicas: list[dict[str, Any]]) -> None:
    if os.environ.get("E2E_CERTS", "cli") != "auto-tls":
        pytest.skip("the certificates come from the CLI (E2E_CERTS=auto-tls installs the cluster-aware overlay)")
    secret = kube.get("secret", "sidecar-injector-auto-tls", "-n", NAMESPACE)["data"]
    [hook] = kube.get("mutatingwebhookconfiguration", "sidecar-injector")["webhooks"]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == base64.b64decode(secret["ca-bundle.crt"])
    served_pair = base64.b64decode(secret["tls.crt"]).decode()
    for replica in replicas:
        address = (replica["status"]["podIP"], 8443)
        wait_for(f"{replica['metadata']['name']} to serve the Secret's pair",
                 lambda a=address: ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(
                     ssl.get_server_certificate(a))) == served_pair, timeout=60)
    leases = kube.get("leases", "-n", NAMESPACE)["items"]
    holders = {lease["metadata"]["name"]: lease["spec"].get("holderIdentity") for lease in leases}
    assert holders["sidecar-injector-auto-tls-leader"].split("_")[0] in {r["metadata"]["name"] for r in replicas}
