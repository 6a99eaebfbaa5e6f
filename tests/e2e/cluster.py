"""Talking to a real cluster through `kubectl` (no client library), for the end-to-end tests.

Every read is `-o json`, so assertions are about what the API server stored, not what a
manifest asked for.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
E2E_CONFIG = Path(__file__).resolve().parent / "config.yaml"
KUBECTL_TIMEOUT = 120.0
T = TypeVar("T")


class KubectlError(RuntimeError):
    """A kubectl command failed; the message carries the command and its stderr."""

    def __init__(self, args: list[str], done: subprocess.CompletedProcess[str]) -> None:
        self.done = done
        super().__init__(f"`{' '.join(args)}` exited {done.returncode}:\n{done.stderr.strip()}")


@dataclass(frozen=True)
class Kubectl:
    """`kubectl` with the caller's KUBECONFIG and context."""

    binary: str = os.environ.get("E2E_KUBECTL", "kubectl")

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = KUBECTL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *args]
        done = subprocess.run(command, check=False, input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise KubectlError(command, done)
        return done

    def get(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json").stdout)

    def exists(self, *args: str) -> bool:
        return self.run("get", *args, "--ignore-not-found", "-o", "name", check=False).stdout.strip() != ""

    def apply(self, obj: dict[str, Any] | str, *args: str) -> subprocess.CompletedProcess[str]:
        text = obj if isinstance(obj, str) else json.dumps(obj)
        return self.run("apply", "-f", "-", *args, input=text)

    def create(self, obj: dict[str, Any], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`kubectl create`; its stderr holds the admission warnings ("Warning: ...")."""
        return self.run("create", "-f", "-", *args, input=json.dumps(obj), check=check)


def cluster_problem(binary: str = Kubectl.binary) -> str | None:
    """Why no cluster can be used, or None when `kubectl version` reaches an API server."""
    if shutil.which(binary) is None:
        return f"{binary} is not on PATH"
    configured = os.environ.get("KUBECONFIG") or (Path.home() / ".kube" / "config").is_file()
    if not configured and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "no cluster configured: set KUBECONFIG (or create ~/.kube/config)"
    try:
        done = subprocess.run([binary, "version", "-o", "json", "--request-timeout=10s"], check=False,
                              capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "`kubectl version` timed out: the API server does not answer"
    if done.returncode != 0 or "serverVersion" not in done.stdout:
        lines = done.stderr.strip().splitlines()
        return f"`kubectl version` cannot reach the API server: {lines[-1] if lines else 'no server version'}"
    return None


def server_version(kube: Kubectl) -> tuple[int, int]:
    """(major, minor) of the API server; providers append "+" to the minor ("30+")."""
    info = json.loads(kube.run("version", "-o", "json").stdout)["serverVersion"]
    return int(re.sub(r"\D", "", info["major"])), int(re.sub(r"\D", "", info["minor"]))


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 120.0, interval: float = 1.0) -> T:
    """Poll until probe returns something other than None (or False); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_terminated(kube: Kubectl, kind: str, name: str, timeout: float = 180.0) -> None:
    """Wait until an object being deleted (a namespace an earlier run removed) is gone."""
    def gone_or_live() -> bool:
        found = kube.run("get", kind, name, "--ignore-not-found", "-o", "json", check=False).stdout.strip()
        return not found or not json.loads(found)["metadata"].get("deletionTimestamp")
    wait_for(f"{kind} {name} to finish terminating", gone_or_live, timeout=timeout, interval=1)


def webhook_cli(*args: str, timeout: float = 60.0) -> str:
    """`python -m webhook ARGS` (this checkout's CLI); returns stdout, raises with stderr on failure."""
    done = subprocess.run([sys.executable, "-m", "webhook", *args], check=False, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"`sidecar-injector {' '.join(args)}` exited {done.returncode}:\n{done.stderr}")
    return done.stdout


# The image of every e2e container: busybox from Docker Hub, or the local cluster's own build
# (scripts/local-cluster.sh env sets E2E_APP_IMAGE; no registry is reachable there).
DEFAULT_APP_IMAGE = "busybox:1.36"
APP_IMAGE = os.environ.get("E2E_APP_IMAGE") or DEFAULT_APP_IMAGE


def e2e_config_text(version: tuple[int, int]) -> str:
    """The e2e injection config, targeting the cluster's own version and the e2e image."""
    text = E2E_CONFIG.read_text(encoding="utf-8")
    text = text.replace(f"image: {DEFAULT_APP_IMAGE}", f"image: {APP_IMAGE}")
    return re.sub(r'(?m)^kubernetesVersion: .*$', f'kubernetesVersion: "{version[0]}.{version[1]}"', text)


# -- objects the scenarios create ----------------------------------------------------------------


def container(name: str = "app", command: str = "sleep 3600") -> dict[str, Any]:
    return {"name": name, "image": APP_IMAGE, "command": ["sh", "-c", command],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}


def pod(name: str, namespace: str, *, labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"e2e": name, **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [container()], "terminationGracePeriodSeconds": 1, **spec}}


def deployment(name: str, namespace: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"e2e": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container()]}}}}


def job(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 300,
                     "template": {"metadata": {"labels": {"e2e": name}},
                                  "spec": {"restartPolicy": "Never", "containers": [container(command="echo done")]}}}}
