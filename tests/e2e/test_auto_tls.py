"""--auto-tls against a real API server, with the overlay's RBAC: two webhook processes converge on
one Secret and the caBundle matches it; with short lifetimes, serving-pair renewals and a CA
rotation pass while Pods are created through the API server (failurePolicy Fail: a certificate
the API server cannot verify would fail a create); killing the leader hands over.

The webhook configuration must be named sidecar-injector (the overlay grants access to that one
only), so it selects only this file's namespace, by a label of its own.
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from .aware import (
    INSTALL_NAMESPACE,
    Webhook,
    applied_rbac,
    local_only,
    service_account_kubeconfig,
    start_webhook,
    webhook_configuration,
)
from .cluster import Kubectl, container, e2e_config_text, wait_for

pytestmark = pytest.mark.e2e

SECRET = "sidecar-injector-auto-tls"
LEADER_LEASE = f"{SECRET}-leader"
CONFIGURATION = "sidecar-injector"
LIFETIMES = ["--auto-tls-cert-lifetime", "24s", "--auto-tls-ca-lifetime", "75s",
             "--auto-tls-propagation-seconds", "3", "--lease-duration", "6"]
FLAGS = ["--auto-tls", "--auto-tls-host", "127.0.0.1", *LIFETIMES]


@pytest.fixture(scope="module")
def setup(kube: Kubectl, version: tuple[int, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    local_only()
    if kube.exists("mutatingwebhookconfiguration", CONFIGURATION):
        pytest.skip("a webhook configuration named sidecar-injector is installed here already (a real install)")
    workdir = tmp_path_factory.mktemp("auto-tls")
    label = {"e2e-auto-tls": secrets.token_hex(4)}
    with applied_rbac(kube):
        kube.run("delete", "secret", SECRET, "-n", INSTALL_NAMESPACE, "--ignore-not-found")
        kube.run("delete", "lease", "--all", "-n", INSTALL_NAMESPACE, "--ignore-not-found")
        kubeconfig = service_account_kubeconfig(kube, workdir / "sa.kubeconfig")
        config = workdir / "config.yaml"
        config.write_text(e2e_config_text(version), encoding="utf-8")
        replicas = [start_webhook(workdir / name, kubeconfig, config, *FLAGS, dev_certs=False) for name in "ab"]
        namespace = f"sie2e-tls-{secrets.token_hex(3)}"
        try:
            kube.apply(webhook_configuration(CONFIGURATION, replicas[0].url, label))  # no caBundle: the leader's
            kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": label}})
            wait_for("the default ServiceAccount", lambda: kube.exists("serviceaccount", "default", "-n", namespace),
                     timeout=60)
            yield {"replicas": replicas, "namespace": namespace, "workdir": workdir}
        finally:
            kube.run("delete", "mutatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found", check=False)
            for replica in replicas:
                replica.stop()
            kube.run("delete", "pods", "--all", "-n", namespace, "--force", "--grace-period=0", check=False)
            kube.run("delete", "namespace", namespace, "--ignore-not-found", "--wait=false", check=False)
            kube.run("delete", "secret", SECRET, "-n", INSTALL_NAMESPACE, "--ignore-not-found", check=False)


def _secret(kube: Kubectl) -> dict[str, bytes] | None:
    if not kube.exists("secret", SECRET, "-n", INSTALL_NAMESPACE):
        return None
    data = kube.get("secret", SECRET, "-n", INSTALL_NAMESPACE).get("data") or {}
    return {key: base64.b64decode(value) for key, value in data.items()}


def _ca_bundle(kube: Kubectl) -> bytes:
    hooks = kube.get("mutatingwebhookconfiguration", CONFIGURATION)["webhooks"]
    bundles = {hook["clientConfig"].get("caBundle", "") for hook in hooks}
    assert len(bundles) == 1
    return base64.b64decode(bundles.pop())


def _serial(pem: bytes) -> int:
    return x509.load_pem_x509_certificate(pem).serial_number


def _holder(kube: Kubectl) -> str:
    return kube.get("lease", LEADER_LEASE, "-n", INSTALL_NAMESPACE)["spec"].get("holderIdentity") or ""


def test_two_replicas_converge_on_one_secret_and_the_ca_bundle_matches_it(kube: Kubectl,
                                                                         setup: dict[str, Any]) -> None:
    replicas: list[Webhook] = setup["replicas"]
    for replica in replicas:
        wait_for("both replicas ready", lambda r=replica: r.get("/readyz")[0] == 200, timeout=60, interval=0.5)
    data = wait_for("the Secret", lambda: _secret(kube), timeout=30)
    assert _ca_bundle(kube) == data["ca-bundle.crt"]
    wait_for("every replica serving the Secret's pair", lambda: all(
        _serial(r.served_certificate()) == _serial(_secret(kube)["tls.crt"]) for r in replicas), timeout=30)
    holder = _holder(kube)
    assert sum(f"_{r.process.pid}_" in holder for r in replicas) == 1, f"one of them leads: {holder}"
    leaders = [r for r in replicas if r.metric("sidecar_injector_leader", lease=LEADER_LEASE) == 1]
    assert len(leaders) == 1
    expiry = replicas[0].metric("sidecar_injector_certificate_expiry_timestamp_seconds")
    assert expiry == x509.load_pem_x509_certificate(data["tls.crt"]).not_valid_after_utc.timestamp()


class PodLoop(threading.Thread):
    """Creates Pods through the API server, one at a time, until stopped; counts the failures."""

    def __init__(self, kube: Kubectl, namespace: str) -> None:
        super().__init__(daemon=True)
        self.kube, self.namespace = kube, namespace
        self.created_at: list[float] = []  # monotonic time of each create that passed
        self.failures: list[str] = []
        self.halt = threading.Event()

    @property
    def created(self) -> int:
        return len(self.created_at)

    def run(self) -> None:
        while not self.halt.is_set():
            name = f"loop-{self.created + len(self.failures)}"
            manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": self.namespace},
                        # bound to no real node: the kubelet never runs them
                        "spec": {"nodeName": "e2e-nowhere", "containers": [container()]}}
            done = self.kube.create(manifest, check=False)
            if done.returncode == 0:
                self.created_at.append(time.monotonic())
            else:
                self.failures.append(done.stderr.strip())
            time.sleep(0.2)


def test_renewals_and_a_ca_rotation_pass_while_pods_are_created(kube: Kubectl, setup: dict[str, Any],
                                                                timing: Any) -> None:
    loop = PodLoop(kube, setup["namespace"])
    leaves: set[int] = set()
    cas: set[int] = set()
    bundle_sizes: list[int] = []
    started = time.monotonic()
    loop.start()
    try:
        while time.monotonic() - started < 150:
            data = _secret(kube) or {}
            if "tls.crt" in data:
                leaves.add(_serial(data["tls.crt"]))
                cas.add(_serial(data["ca.crt"]))
                bundle_sizes.append(data["ca-bundle.crt"].count(b"BEGIN CERTIFICATE"))
            rotated_back = len(cas) >= 2 and bundle_sizes[-1] == 1 and max(bundle_sizes) == 2
            if len(leaves) >= 3 and rotated_back:
                break
            time.sleep(1)
    finally:
        loop.halt.set()
        loop.join(30)
    ended = time.monotonic()
    timing("auto-tls: rotations observed within (s)", ended - started)
    assert loop.failures == [], f"{len(loop.failures)} of {loop.created + len(loop.failures)} creates failed"
    # Creates went on all through the rotations (how many depends on the machine's load).
    moments = [started, *loop.created_at, ended]
    assert max(b - a for a, b in zip(moments, moments[1:])) < 10, "a pause of 10 s or more without a create"
    assert len(leaves) >= 3, f"two serving-pair rotations (saw {len(leaves) - 1})"
    assert len(cas) >= 2 and max(bundle_sizes) == 2, "a CA rotation, with both CAs in the bundle for a while"
    assert bundle_sizes[-1] == 1, "the old CA left the bundle once every replica served the new one"
    injected = kube.get("pod", f"loop-{loop.created - 1}", "-n", setup["namespace"])
    assert "sidecar-injector.io/status" in injected["metadata"]["annotations"]


def test_killing_the_leader_hands_over_and_the_new_leader_rotates(kube: Kubectl, setup: dict[str, Any],
                                                                 timing: Any) -> None:
    replicas: list[Webhook] = setup["replicas"]
    holder = _holder(kube)
    [leader] = [r for r in replicas if f"_{r.process.pid}_" in holder]
    [other] = [r for r in replicas if r is not leader]
    configuration = kube.get("mutatingwebhookconfiguration", CONFIGURATION)
    configuration["webhooks"][0]["clientConfig"]["url"] = other.url  # the API server calls the survivor
    kube.run("replace", "-f", "-", input=json.dumps(configuration))
    before = _serial(_secret(kube)["tls.crt"])
    killed = time.monotonic()
    leader.stop(signal.SIGKILL)
    wait_for("the other replica to take the Lease", lambda: f"_{other.process.pid}_" in _holder(kube),
             timeout=20, interval=0.2)
    timing("auto-tls: Lease taken over after the leader was killed (s; lease 6)", time.monotonic() - killed)
    wait_for("the new leader to renew the serving pair", lambda: _serial(_secret(kube)["tls.crt"]) != before,
             timeout=40, interval=0.5)
    wait_for("the survivor to serve it", lambda: _serial(other.served_certificate()) == _serial(
        _secret(kube)["tls.crt"]), timeout=20)
    pod_ = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "after-failover", "namespace": setup["namespace"]},
            "spec": {"nodeName": "e2e-nowhere", "containers": [container()]}}
    kube.create(pod_)
    assert other.metric("sidecar_injector_leader", lease=LEADER_LEASE) == 1
    assert "leadership acquired" in other.log_text()


def test_readyz_fails_until_a_trusted_pair_is_loaded(kube: Kubectl, setup: dict[str, Any]) -> None:
    """A replica whose Secret the RBAC does not reach (in another namespace) serves its development
    placeholder and stays unready, saying why; a missing permission is a log line, not a crash."""
    workdir: Path = setup["workdir"]
    kubeconfig = workdir / "sa.kubeconfig"
    config = workdir / "config.yaml"
    stray = start_webhook(workdir / "stray", kubeconfig, config, *FLAGS, "--cluster-namespace", "default",
                          dev_certs=False)
    try:
        time.sleep(3)
        status, body = stray.get("/readyz")
        assert status == 503
        assert f"auto-tls: waiting for a serving certificate from Secret default/{SECRET}" in body
        assert '"reason":"forbidden"' in stray.log_text()
        assert stray.get("/healthz")[0] == 200
    finally:
        stray.stop()
