"""The install manifests as the cluster's own API server judges them: rendered for its version they
are accepted with validation on (`kubectl apply --dry-run=server`, no --validate=false); the
base, which needs 1.30, is refused by an older one, naming the field it does not know."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import REPO, Kubectl, webhook_cli

pytestmark = pytest.mark.e2e

INSTALL_NAMESPACE = "sidecar-injector"


@pytest.fixture(scope="module")
def install_namespace(kube: Kubectl) -> Iterator[str]:
    """A server-side dry run of namespaced objects needs their namespace to exist."""
    created = not kube.exists("namespace", INSTALL_NAMESPACE)
    if created:
        kube.run("create", "namespace", INSTALL_NAMESPACE)
    try:
        yield INSTALL_NAMESPACE
    finally:
        if created:
            kube.run("delete", "namespace", INSTALL_NAMESPACE, "--wait=false", check=False)


def _certs(tmp_path: Path) -> Path:
    certs = tmp_path / "certs"
    webhook_cli("certs", "--out", str(certs))
    return certs


def _dry_run(kube: Kubectl, manifests: str) -> tuple[int, str]:
    done = kube.run("apply", "--dry-run=server", "-f", "-", input=manifests, check=False)
    return done.returncode, done.stdout + done.stderr


def test_rendered_for_the_cluster_version_is_accepted(kube: Kubectl, version: tuple[int, int],
                                                      install_namespace: str, tmp_path: Path) -> None:
    rendered = webhook_cli("manifests", "--cert-dir", str(_certs(tmp_path)),
                           "--kubernetes-version", f"{version[0]}.{version[1]}")
    status, output = _dry_run(kube, rendered)
    assert status == 0, output
    for kind in ("deployment.apps", "poddisruptionbudget.policy",
                 "mutatingwebhookconfiguration.admissionregistration.k8s.io"):
        # created, or configured/unchanged where the webhook is installed for real (in-cluster)
        assert re.search(rf"{re.escape(kind)}/sidecar-injector (created|configured|unchanged) \(server dry run\)",
                         output), output


def test_overlay_for_the_cluster_version_is_accepted(kube: Kubectl, version: tuple[int, int],
                                                     install_namespace: str) -> None:
    from webhook.kubeversion import KubeVersion
    from webhook.tools.version_manifests import overlay_for

    kustomize = shutil.which("kubectl")  # components need kustomize >= 3.7: any recent kubectl builds them
    if kustomize is None:
        pytest.skip("kubectl is not on PATH to build the overlay (kubectl kustomize)")
    overlay = overlay_for(KubeVersion(*version))
    directory = REPO / "manifests" / ("overlays/" + overlay if overlay else "")
    built = Kubectl(kustomize).run("kustomize", str(directory)).stdout
    status, output = _dry_run(kube, built)
    assert status == 0, output


def test_base_needs_kubernetes_1_30(kube: Kubectl, version: tuple[int, int], install_namespace: str,
                                   tmp_path: Path) -> None:
    if version >= (1, 30):
        pytest.skip(f"the base is for 1.30 and newer, and the server is {version[0]}.{version[1]}")
    rendered = webhook_cli("manifests", "--cert-dir", str(_certs(tmp_path)))
    status, output = _dry_run(kube, rendered)
    assert status != 0
    assert 'unknown field "sleep"' in output or "matchConditions" in output, output


def test_dry_run_left_nothing_behind(kube: Kubectl, install_namespace: str) -> None:
    if kube.exists("mutatingwebhookconfiguration", "sidecar-injector"):
        pytest.skip("the webhook is installed in this cluster for real (E2E_MODE=in-cluster)")
    for kind in ("deployment", "poddisruptionbudget", "configmap", "service"):
        assert not kube.exists(kind, "sidecar-injector", "-n", install_namespace), f"a dry run created a {kind}"
