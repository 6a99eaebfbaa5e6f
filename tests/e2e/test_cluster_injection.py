"""The webhook in a real cluster: each scenario asserts what the API server stored.

Run with `pytest -m e2e tests/e2e` (see conftest.py for modes and variables).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .cluster import Kubectl, deployment, job, pod

pytestmark = pytest.mark.e2e

STATUS = "sidecar-injector.io/status"
SIDECAR = "proxy"
NATIVE_SIDECARS = (1, 29)


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def _names(containers: list[dict[str, Any]] | None) -> list[str]:
    return [c["name"] for c in containers or []]


def assert_injected(stored: dict[str, Any], version: tuple[int, int]) -> None:
    """The sidecar where the server's version puts it, and the status annotation."""
    status = json.loads(_annotations(stored)[STATUS])
    assert status["containers"] == [SIDECAR]
    spec = stored["spec"]
    if version >= NATIVE_SIDECARS:
        [sidecar] = [c for c in spec.get("initContainers") or [] if c["name"] == SIDECAR]
        assert sidecar["restartPolicy"] == "Always"
        assert SIDECAR not in _names(spec["containers"])
        assert status["native"] is True
    else:
        assert _names(spec["containers"])[0] == SIDECAR
        assert status["native"] is False


def assert_untouched(stored: dict[str, Any]) -> None:
    assert STATUS not in _annotations(stored)
    assert _names(stored["spec"]["containers"]) == ["app"]
    assert SIDECAR not in _names(stored["spec"].get("initContainers"))


def test_namespace_is_labelled(kube: Kubectl, injected_namespace: str) -> None:
    labels = kube.get("namespace", injected_namespace)["metadata"]["labels"]
    assert labels["sidecar-injector.io/inject"] == "enabled"


def test_bare_pod_gets_the_sidecar(kube: Kubectl, injected_namespace: str, version: tuple[int, int]) -> None:
    done = kube.create(pod("bare", injected_namespace))
    assert_injected(kube.get("pod", "bare", "-n", injected_namespace), version)
    # The API server calls the webhook again (reinvocationPolicy IfNeeded, after its
    # ServiceAccount plugin ran again): that call finds everything in place and says nothing.
    assert "already injected" not in done.stderr and "changed by another webhook" not in done.stderr


def test_deployment_pod_is_injected(kube: Kubectl, injected_namespace: str, version: tuple[int, int]) -> None:
    """Pods of a Deployment are created by the ReplicaSet controller with generateName and no name."""
    ns = injected_namespace
    kube.apply(deployment("web", ns, replicas=3))
    kube.run("rollout", "status", "deployment/web", "-n", ns, "--timeout=180s", timeout=200)
    pods = kube.get("pods", "-n", ns, "-l", "e2e=web")["items"]
    assert len(pods) == 3
    for stored in pods:
        assert stored["metadata"]["generateName"].startswith("web-")
        assert_injected(stored, version)
    template = kube.get("deployment", "web", "-n", ns)["spec"]["template"]
    assert STATUS not in (template["metadata"].get("annotations") or {}), "the webhook mutates Pods only"


def test_job_pod_gets_native_sidecar_and_completes(kube: Kubectl, injected_namespace: str,
                                                   version: tuple[int, int]) -> None:
    if version < NATIVE_SIDECARS:
        pytest.skip(f"native sidecars need Kubernetes 1.29+; the server is {version[0]}.{version[1]}")
    ns = injected_namespace
    kube.apply(job("report", ns))
    done = kube.run("wait", "--for=condition=complete", "job/report", "-n", ns, "--timeout=240s",
                    timeout=260, check=False)
    pods = kube.get("pods", "-n", ns, "-l", "e2e=report")["items"]
    assert pods, "the Job created no Pod"
    assert_injected(pods[0], version)
    assert done.returncode == 0, (
        f"Job did not complete: {done.stderr}\nPod status: {json.dumps(pods[0].get('status'), indent=1)}"
    )


def test_job_without_native_sidecars_completes_uninjected(kube: Kubectl, injected_namespace: str,
                                                           version: tuple[int, int]) -> None:
    """Before 1.29 a sidecar can only be a legacy container, which never exits: the profile's
    default runToCompletion (skip) leaves it out, says why, and the Job completes."""
    if version >= NATIVE_SIDECARS:
        pytest.skip(f"the server ({version[0]}.{version[1]}) has native sidecars, which let a Job complete")
    ns = injected_namespace
    done = kube.create(pod("once", ns, restartPolicy="Never"))
    assert ("Warning: not injected: a legacy sidecar would keep this run-to-completion Pod from completing "
            f"(no native sidecars on {version[0]}.{version[1]})") in done.stderr
    assert_untouched(kube.get("pod", "once", "-n", ns))
    kube.apply(job("batch", ns))
    completed = kube.run("wait", "--for=condition=complete", "job/batch", "-n", ns, "--timeout=120s",
                         timeout=140, check=False)
    pods = kube.get("pods", "-n", ns, "-l", "e2e=batch")["items"]
    assert pods, "the Job created no Pod"
    assert_untouched(pods[0])
    assert completed.returncode == 0, f"Job did not complete: {completed.stderr}"


def test_opted_out_pod_is_untouched(kube: Kubectl, injected_namespace: str) -> None:
    kube.create(pod("opted-out", injected_namespace, labels={"sidecar-injector.io/inject": "false"}))
    assert_untouched(kube.get("pod", "opted-out", "-n", injected_namespace))


def test_host_pid_pod_is_admitted_without_share_process_namespace(kube: Kubectl, injected_namespace: str,
                                                                  version: tuple[int, int]) -> None:
    manifest = pod("host-pid", injected_namespace, hostPID=True,
                   annotations={"sidecar-injector.io/share-process-namespace": "true"})
    done = kube.create(manifest)
    assert "Warning: shareProcessNamespace not set: the Pod uses hostPID, which forbids it" in done.stderr
    stored = kube.get("pod", "host-pid", "-n", injected_namespace)
    assert stored["spec"]["hostPID"] is True
    assert "shareProcessNamespace" not in stored["spec"]
    assert_injected(stored, version)


def test_invalid_annotation_is_denied(kube: Kubectl, injected_namespace: str) -> None:
    manifest = pod("invalid", injected_namespace, annotations={"sidecar-injector.io/drain-seconds": "abc"})
    done = kube.create(manifest, check=False)
    assert done.returncode != 0
    assert 'admission webhook "inject.sidecar-injector.io" denied the request' in done.stderr
    assert "annotation sidecar-injector.io/drain-seconds='abc' is invalid" in done.stderr
    assert not kube.exists("pod", "invalid", "-n", injected_namespace)


def test_pod_in_unlabelled_namespace_is_untouched(kube: Kubectl, injected_namespace: str,
                                                  plain_namespace: str) -> None:
    """injected_namespace is requested so the webhook is known to be live while this runs."""
    kube.create(pod("plain", plain_namespace))
    assert_untouched(kube.get("pod", "plain", "-n", plain_namespace))


def test_server_dry_run_is_injected(kube: Kubectl, injected_namespace: str, version: tuple[int, int]) -> None:
    done = kube.create(pod("dry-run", injected_namespace), "--dry-run=server", "-o", "json")
    assert_injected(json.loads(done.stdout), version)
    assert not kube.exists("pod", "dry-run", "-n", injected_namespace)
