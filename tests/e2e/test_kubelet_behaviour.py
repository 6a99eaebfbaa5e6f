"""What the kubelet does with an injected Pod: start order, stop order, shared PIDs, pod info,
tokens, probes and warm-up, each observed from inside the running containers.

The `timeline` profile (tests/e2e/config.yaml) injects a sidecar that becomes ready 2 s after
it starts, with a 3 s drain and 2 s of sidecar shutdown; on clusters before 1.29 it is a
legacy sidecar (the first regular container, holding the application with a postStart
hook), from 1.29 a native one. Measured times are recorded with `timing()` and printed at
the end of the run.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from .cluster import Kubectl, container, pod, wait_for
from .timeline import Follow, app_script, now, wait_ready

pytestmark = pytest.mark.e2e

SIDECAR = "timeline-sidecar"
PROFILE = {"sidecar-injector.io/profiles": "timeline"}
DRAIN = 3.0
SHUTDOWN = 2.0
SIDECAR_READY_AFTER = 2.0
NATIVE_SIDECARS = (1, 29)
# A process is signalled a few tens of milliseconds after its hook returns; the clock is
# the same (the node's); allow for the kubelet noticing the deletion.
SLACK = 0.25


def _timeline_pod(name: str, namespace: str, *steps: str, **spec: Any) -> dict[str, Any]:
    manifest = pod(name, namespace, annotations=PROFILE, **spec)
    manifest["spec"]["containers"] = [container(command=app_script(*steps))]
    return manifest


def _start(kube: Kubectl, manifest: dict[str, Any]) -> dict[str, Any]:
    kube.create(manifest)
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    wait_ready(kube, name, namespace)
    return kube.get("pod", name, "-n", namespace)


def _exec(kube: Kubectl, name: str, namespace: str, container_name: str, *command: str) -> str:
    return kube.run("exec", name, "-n", namespace, "-c", container_name, "--", *command).stdout


def test_start_and_stop_order(kube: Kubectl, injected_namespace: str, version: tuple[int, int],
                              timing: Callable[[str, float], None]) -> None:
    ns = injected_namespace
    stored = _start(kube, _timeline_pod("order", ns))
    native = version >= NATIVE_SIDECARS
    sidecars = stored["spec"].get("initContainers", []) if native else stored["spec"]["containers"]
    assert SIDECAR in [c["name"] for c in sidecars]
    grace = stored["spec"]["terminationGracePeriodSeconds"]
    assert grace >= DRAIN + SHUTDOWN, f"the Pod asked for 1 s; the webhook should raise it, got {grace}"

    app_log = Follow(kube, "order", ns, "app")
    sidecar_log = Follow(kube, "order", ns, SIDECAR)
    time.sleep(1)  # both followers attached
    deleted = now()
    kube.run("delete", "pod", "order", "-n", ns, "--wait=false")
    app, sidecar = app_log.events(), sidecar_log.events()

    # Start: the application's first instruction runs after the sidecar is ready.
    assert sidecar["sidecar-ready"] - sidecar["sidecar-start"] >= SIDECAR_READY_AFTER - SLACK
    assert app["app-start"] > sidecar["sidecar-ready"], (app, sidecar)
    timing("start: app's first instruction after sidecar ready (s)", app["app-start"] - sidecar["sidecar-ready"])

    # Stop: SIGTERM reaches the application only after its preStop drain ...
    assert app["app-term"] - deleted >= DRAIN - SLACK, (deleted, app)
    timing("stop: app SIGTERM after delete (s; drain 3)", app["app-term"] - deleted)
    # ... and the sidecar after the application, later than the Pod's own 1 s grace period
    # would have allowed: the raised grace period is really granted (no SIGKILL before).
    assert sidecar["sidecar-term"] > app["app-term"], (app, sidecar)
    assert sidecar["sidecar-term"] - deleted > 1 + SLACK
    timing("stop: sidecar SIGTERM after app SIGTERM (s)", sidecar["sidecar-term"] - app["app-term"])
    if not native:
        # A legacy sidecar's own preStop covers the drain and its shutdown time.
        assert sidecar["sidecar-term"] - deleted >= DRAIN + SHUTDOWN - SLACK
    timing("stop: sidecar SIGTERM after delete (s)", sidecar["sidecar-term"] - deleted)


def test_share_process_namespace(kube: Kubectl, injected_namespace: str) -> None:
    ns = injected_namespace
    stored = _start(kube, _timeline_pod("pids", ns, "sleep 3601 & wait $!"))
    assert stored["spec"]["shareProcessNamespace"] is True
    processes = _exec(kube, "pids", ns, SIDECAR, "ps", "-o", "pid,args")
    assert "sleep 3601" in processes, f"the sidecar does not see the application's processes:\n{processes}"


def test_host_pid_pod_runs_without_share_process_namespace(kube: Kubectl, injected_namespace: str) -> None:
    ns = injected_namespace
    manifest = _timeline_pod("hostpid", ns, hostPID=True)
    done = kube.create(manifest)
    assert "Warning: shareProcessNamespace not set: the Pod uses hostPID, which forbids it" in done.stderr
    wait_ready(kube, "hostpid", ns)
    stored = kube.get("pod", "hostpid", "-n", ns)
    assert stored["spec"]["hostPID"] is True
    assert "shareProcessNamespace" not in stored["spec"]
    # With the host's PID namespace the sidecar sees the kubelet's processes too.
    assert "kubelet" in _exec(kube, "hostpid", ns, SIDECAR, "ps", "-o", "args")


def test_downward_api_files(kube: Kubectl, injected_namespace: str) -> None:
    ns = injected_namespace
    _start(kube, _timeline_pod("podinfo", ns))
    for name in ("app", SIDECAR):
        labels = _exec(kube, "podinfo", ns, name, "cat", "/etc/podinfo/labels")
        assert 'e2e="podinfo"' in labels.splitlines()
        annotations = _exec(kube, "podinfo", ns, name, "cat", "/etc/podinfo/annotations")
        assert 'sidecar-injector.io/profiles="timeline"' in annotations.splitlines()
        assert "sidecar-injector.io/status=" in annotations
        assert _exec(kube, "podinfo", ns, name, "cat", "/etc/podinfo/name") == "podinfo"
        assert _exec(kube, "podinfo", ns, name, "cat", "/etc/podinfo/namespace") == ns


def _jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_projected_token_has_the_profile_audience(kube: Kubectl, injected_namespace: str) -> None:
    ns = injected_namespace
    _start(kube, _timeline_pod("token", ns))
    token = _exec(kube, "token", ns, SIDECAR, "cat", "/var/run/secrets/e2e-timeline/token")
    claims = _jwt_claims(token)
    assert claims["aud"] == ["e2e-timeline"]
    assert claims["sub"] == f"system:serviceaccount:{ns}:default"
    assert claims["kubernetes.io"]["pod"]["name"] == "token"
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {"token": token, "audiences": ["e2e-timeline"]}}
    answer = json.loads(kube.create(review, "-o", "json").stdout)
    assert answer["status"]["authenticated"] is True, answer["status"]
    # The token is the sidecar's only: the application has no such mount.
    listing = kube.run("exec", "token", "-n", ns, "-c", "app", "--", "ls", "/var/run/secrets/e2e-timeline",
                       check=False)
    assert listing.returncode != 0


def _ready(kube: Kubectl, name: str, namespace: str) -> bool:
    conditions = kube.get("pod", name, "-n", namespace).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_injected_readiness_probe_gates_ready(kube: Kubectl, injected_namespace: str,
                                              timing: Callable[[str, float], None]) -> None:
    ns = injected_namespace
    manifest = _timeline_pod("probed", ns, "sleep 6", 'echo "event app-listen $(ts)"',
                             "httpd -f -p 8080 -h /var/www & wait $!")
    manifest["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    kube.create(manifest)
    stored = kube.get("pod", "probed", "-n", ns)
    [app] = [c for c in stored["spec"]["containers"] if c["name"] == "app"]
    assert app["readinessProbe"]["tcpSocket"]["port"] == 8080
    wait_for("the app container to start", lambda: "app-start" in kube.run(
        "logs", "probed", "-n", ns, "-c", "app", check=False).stdout, timeout=60, interval=0.2)
    polls_before_listen = 0
    became_ready = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = _ready(kube, "probed", ns)
        listening = "app-listen" in kube.run("logs", "probed", "-n", ns, "-c", "app").stdout
        if ready:
            became_ready = now()
            assert listening, "Ready before the application listened: the probe does not gate readiness"
            break
        if not listening:
            polls_before_listen += 1
        time.sleep(0.2)
    assert became_ready is not None, "never Ready"
    assert polls_before_listen > 3, "the test never saw the Pod unready while the application started"
    log = kube.run("logs", "probed", "-n", ns, "-c", "app").stdout
    listened = float(log.split("event app-listen ")[1].split()[0])
    timing("readiness: Ready seen after the app listens (s; probe period 1)", became_ready - listened)


def _restarts(kube: Kubectl, name: str, namespace: str) -> int:
    statuses = kube.get("pod", name, "-n", namespace).get("status", {}).get("containerStatuses") or []
    return sum(s["restartCount"] for s in statuses if s["name"] == "app")


def _started(kube: Kubectl, pod_name: str, namespace: str) -> bool:
    """The app container's startup probe has passed (the kubelet's ``started``)."""
    statuses = kube.get("pod", pod_name, "-n", namespace).get("status", {}).get("containerStatuses") or []
    return any(s["name"] == "app" and s.get("started") for s in statuses)


@pytest.mark.parametrize("warmup", [True, False], ids=["with-warmup", "without-warmup"])
def test_warmup_protects_a_slow_starter(kube: Kubectl, injected_namespace: str, warmup: bool) -> None:
    """The application listens only after 10 s; its liveness probe allows 2 s."""
    ns = injected_namespace
    name = "slow-warm" if warmup else "slow-cold"
    manifest = pod(name, ns, annotations={"sidecar-injector.io/warmup-seconds": "30"} if warmup else None)
    app = container(command=app_script("sleep 10", "httpd -f -p 8080 -h /var/www & wait $!"))
    app["ports"] = [{"containerPort": 8080}]
    app["livenessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "failureThreshold": 2}
    manifest["spec"]["containers"] = [app]
    kube.create(manifest)
    stored = kube.get("pod", name, "-n", ns)
    [injected_app] = [c for c in stored["spec"]["containers"] if c["name"] == "app"]
    if warmup:
        startup = injected_app["startupProbe"]
        assert startup["tcpSocket"]["port"] == 8080
        assert startup["failureThreshold"] * startup["periodSeconds"] >= 30
        wait_for("the injected startup probe to pass", lambda: _started(kube, name, ns), timeout=90, interval=1)
        assert _restarts(kube, name, ns) == 0, "warm-up should keep the liveness probe off until it starts"
        # Ready follows; a kubelet may take a minute or more to say so when the container has a
        # startup probe and no readiness probe (kubernetes/kubernetes#95140, seen on 1.20 here).
        wait_ready(kube, name, ns, timeout=180)
        assert _restarts(kube, name, ns) == 0
    else:
        assert "startupProbe" not in injected_app
        wait_for("the liveness probe to restart the slow starter", lambda: _restarts(kube, name, ns) >= 1,
                 timeout=60, interval=1)
