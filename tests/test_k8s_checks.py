"""tests/k8s_checks.py: it accepts what the API server accepts and demonstrably rejects each rule.

Every semantic rule has a case that breaks exactly that rule on an otherwise valid Pod;
the corpus of real public manifests guards against false positives.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from corpus import CORPUS_DIR, as_pod, corpus_workloads, require_corpus
from k8s_checks import (
    LATEST_SCHEMA,
    SCHEMA_VERSIONS,
    _validator,
    assert_valid_pod,
    parse_quantity,
    pod_errors,
    schema_errors,
    semantic_errors,
)


def minimal_pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "demo"}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}


def rich_pod() -> dict[str, Any]:
    """A valid Pod touching every rule checked, so each case below breaks one thing only."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "rich-pod.example",
            "namespace": "shop",
            "labels": {"app": "web", "example.com/tier": "front_end.1"},
            "annotations": {"example.com/config": "{}", "sidecar.example.io/inject": "true"},
        },
        "spec": {
            "terminationGracePeriodSeconds": 45,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "web",
            "shareProcessNamespace": True,
            "securityContext": {"runAsUser": 1000, "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"},
                {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
            ],
            "volumes": [
                {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "config", "configMap": {"name": "web-config", "defaultMode": 0o644, "items": [{"key": "app.conf", "path": "conf/app.conf"}]}},
                {"name": "certs", "secret": {"secretName": "web-tls"}},
                {
                    "name": "podinfo",
                    "downwardAPI": {
                        "items": [
                            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                            {"path": "name", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
                            {"path": "tier", "fieldRef": {"fieldPath": "metadata.labels['example.com/tier']"}},
                            {"path": "cpu_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
                        ]
                    },
                },
                {
                    "name": "token",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600, "audience": "vault"}},
                            {"configMap": {"name": "ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                        ]
                    },
                },
            ],
            "initContainers": [
                {
                    "name": "init-config",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", "true"],
                    "volumeMounts": [{"name": "config", "mountPath": "/config"}],
                    "ports": [{"containerPort": 9000, "hostPort": 9000}],
                },
                {
                    "name": "proxy",
                    "image": "proxy:1.0",
                    "restartPolicy": "Always",
                    "ports": [{"name": "proxy-admin", "containerPort": 15000}],
                    "startupProbe": {"httpGet": {"path": "/ready", "port": "proxy-admin"}, "failureThreshold": 30, "periodSeconds": 1},
                    "readinessProbe": {"tcpSocket": {"port": 15000}, "successThreshold": 2},
                    "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 1, "terminationGracePeriodSeconds": 5},
                    "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
                },
            ],
            "containers": [
                {
                    "name": "app",
                    "image": "nginx:1.27",
                    "imagePullPolicy": "IfNotPresent",
                    "ports": [
                        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": 9090, "hostPort": 9090},
                        {"containerPort": 9000, "hostPort": 9000},  # same as the init container's: allowed
                    ],
                    "env": [
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
                        {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['example.com/tier']"}}},
                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "LOG_LEVEL", "value": "debug"},  # duplicates only warn
                        {"name": "_under.score-dash", "value": ""},
                    ],
                    "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "web-config"}}],
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "config", "mountPath": "/etc/app", "subPath": "conf", "readOnly": True, "recursiveReadOnly": "IfPossible"},
                        {"name": "config", "mountPath": "/etc/app2", "readOnly": True},
                        {"name": "podinfo", "mountPath": "/etc/podinfo"},
                        {"name": "token", "mountPath": "/var/run/secrets/tokens"},
                        {"name": "certs", "mountPath": "/certs", "mountPropagation": "HostToContainer"},
                    ],
                    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "1.5Gi", "example.com/gpu": 1}},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP", "httpHeaders": [{"name": "X-Probe", "value": "1"}]}, "initialDelaySeconds": 0, "timeoutSeconds": 1},
                    "readinessProbe": {"grpc": {"port": 9090}},
                    "lifecycle": {
                        "postStart": {"exec": {"command": ["sh", "-c", "echo started"]}},
                        "preStop": {"sleep": {"seconds": 45}},  # == terminationGracePeriodSeconds: allowed
                    },
                    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "readOnlyRootFilesystem": True},
                },
                {"name": "shell", "image": "busybox:1.36", "command": ["sleep", "3600"], "stdin": True, "tty": True},
            ],
        },
    }


def test_minimal_and_rich_pods_are_valid_everywhere() -> None:
    for pod in (minimal_pod(), rich_pod()):
        for version in SCHEMA_VERSIONS:
            assert pod_errors(pod, version) == []
        assert_valid_pod(pod)


def test_template_without_name_kind_or_apiversion_is_valid() -> None:
    template = {"metadata": {"labels": {"app": "x"}}, "spec": minimal_pod()["spec"]}
    assert semantic_errors(template) == []
    assert pod_errors(template) == []
    assert "apiVersion" not in template, "pod_errors must not mutate its input"
    assert semantic_errors({"spec": minimal_pod()["spec"]}) == []
    with_generate_name = minimal_pod()
    with_generate_name["metadata"] = {"generateName": "web-7d9f8-"}
    assert pod_errors(with_generate_name) == []


# --------------------------------------------------------------------------- one rule at a time

Mutate = Callable[[dict[str, Any]], None]


def _spec(p: dict) -> dict:
    return p["spec"]


def _app(p: dict) -> dict:
    return p["spec"]["containers"][0]


def _sidecar(p: dict) -> dict:
    return p["spec"]["initContainers"][1]


def _init(p: dict) -> dict:
    return p["spec"]["initContainers"][0]


def _vol(p: dict, name: str) -> dict:
    return next(v for v in p["spec"]["volumes"] if v["name"] == name)


def _set(getter: Callable[[dict], dict], key: str, value: Any) -> Mutate:
    def mutate(p: dict) -> None:
        getter(p)[key] = value

    return mutate


def _do(*steps: Mutate) -> Mutate:
    def mutate(p: dict) -> None:
        for step in steps:
            step(p)

    return mutate


def _env(entry: dict) -> Mutate:
    return lambda p: _app(p)["env"].append(entry)


def _mount(entry: dict) -> Mutate:
    return lambda p: _app(p)["volumeMounts"].append(entry)


def _volume(entry: dict) -> Mutate:
    return lambda p: p["spec"]["volumes"].append(entry)


def _dapi_item(entry: dict) -> Mutate:
    return lambda p: _vol(p, "podinfo")["downwardAPI"]["items"].append(entry)


def _projected(entry: dict) -> Mutate:
    return lambda p: _vol(p, "token")["projected"]["sources"].append(entry)


def _port(entry: dict, getter: Callable[[dict], dict] = _app) -> Mutate:
    return lambda p: getter(p).setdefault("ports", []).append(entry)


HTTP = {"httpGet": {"path": "/", "port": 8080}}

# (id, mutation, substring the error must contain, Kubernetes version)
CASES: list[tuple[str, Mutate, str, tuple[int, int]]] = [
    # names
    ("container-name-duplicate", _set(lambda p: _spec(p)["containers"][1], "name", "app"), "spec.containers[1].name: Duplicate value 'app'", (1, 30)),
    ("container-name-duplicate-with-init", _set(_init, "name", "shell"), "spec.initContainers[0].name: Duplicate value 'shell'", (1, 30)),
    ("container-name-not-dns-label", _set(_app, "name", "App_1"), "spec.containers[0].name: invalid container name 'App_1'", (1, 30)),
    ("container-name-too-long", _set(_app, "name", "a" * 64), "no more than 63 characters", (1, 30)),
    ("container-name-missing", lambda p: _app(p).pop("name"), "spec.containers[0].name: Required value", (1, 30)),
    ("volume-name-duplicate", _volume({"name": "data", "emptyDir": {}}), "spec.volumes[5].name: Duplicate value 'data'", (1, 30)),
    ("volume-name-not-dns-label", _volume({"name": "My.Vol", "emptyDir": {}}), "spec.volumes[5].name: invalid volume name 'My.Vol'", (1, 30)),
    ("volume-without-source", _volume({"name": "empty"}), "spec.volumes[5]: Required value: must specify a volume type", (1, 30)),
    ("volume-two-sources", _volume({"name": "two", "emptyDir": {}, "secret": {"secretName": "s"}}), "may not specify more than 1 volume type", (1, 30)),
    ("volume-secret-without-name", _volume({"name": "s", "secret": {}}), "spec.volumes[5].secret.secretName: Required value", (1, 30)),
    ("volume-configmap-without-name", _volume({"name": "c", "configMap": {}}), "spec.volumes[5].configMap.name: Required value", (1, 30)),
    ("volume-pvc-without-claim", _volume({"name": "c", "persistentVolumeClaim": {"claimName": ""}}), "persistentVolumeClaim.claimName: Required value", (1, 30)),
    ("volume-hostpath-backsteps", _volume({"name": "h", "hostPath": {"path": "/var/../etc"}}), "hostPath.path: must not contain '..'", (1, 30)),
    ("volume-default-mode-range", _set(lambda p: _vol(p, "config")["configMap"], "defaultMode", 0o1000), "configMap.defaultMode: must be a number between 0 and 0777", (1, 30)),
    ("volume-item-path-backsteps", _set(lambda p: _vol(p, "config")["configMap"]["items"][0], "path", "../app.conf"), "items[0].path: Invalid value '../app.conf'", (1, 30)),
    ("emptydir-negative-size", _set(lambda p: _vol(p, "data")["emptyDir"], "sizeLimit", "-1Gi"), "emptyDir.sizeLimit", (1, 30)),
    # volume mounts
    ("mount-unknown-volume", _mount({"name": "nope", "mountPath": "/nope"}), "spec.containers[0].volumeMounts[6].name: Not found: 'nope'", (1, 30)),
    ("mount-path-duplicate", _mount({"name": "certs", "mountPath": "/data"}), "volumeMounts[6].mountPath: Invalid value '/data': must be unique", (1, 30)),
    ("mount-subpath-backsteps", _mount({"name": "data", "mountPath": "/x", "subPath": "a/../../b"}), "volumeMounts[6].subPath", (1, 30)),
    ("mount-subpath-absolute", _mount({"name": "data", "mountPath": "/x", "subPath": "/etc"}), "must be a relative path", (1, 30)),
    ("mount-subpath-and-expr", _mount({"name": "data", "mountPath": "/x", "subPath": "a", "subPathExpr": "$(POD_NAME)"}), "subPathExpr and subPath are mutually exclusive", (1, 30)),
    ("mount-bidirectional-unprivileged", _mount({"name": "data", "mountPath": "/x", "mountPropagation": "Bidirectional"}), "Bidirectional mount propagation is available only to privileged containers", (1, 30)),
    ("mount-rro-without-readonly", _mount({"name": "data", "mountPath": "/x", "recursiveReadOnly": "Enabled"}), "recursiveReadOnly: Forbidden: may only be specified when readOnly is true", (1, 30)),
    ("init-mount-unknown-volume", lambda p: _init(p)["volumeMounts"].append({"name": "gone", "mountPath": "/gone"}), "spec.initContainers[0].volumeMounts[1].name: Not found", (1, 30)),
    # container restartPolicy / sidecars
    ("restart-policy-on-regular-container", _set(_app, "restartPolicy", "Always"), "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers", (1, 30)),
    ("init-restart-policy-not-always", _set(_sidecar, "restartPolicy", "OnFailure"), "spec.initContainers[1].restartPolicy: Unsupported value 'OnFailure'", (1, 30)),
    ("init-restart-policy-before-1.29", lambda p: None, "spec.initContainers[1].restartPolicy: Forbidden: init container restartPolicy (sidecar containers) needs Kubernetes >= 1.29", (1, 28)),
    ("init-lifecycle", _set(_init, "lifecycle", {"postStart": {"exec": {"command": ["true"]}}}), "spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always", (1, 30)),
    ("init-liveness", _set(_init, "livenessProbe", HTTP), "spec.initContainers[0].livenessProbe: Forbidden", (1, 30)),
    ("init-readiness", _set(_init, "readinessProbe", HTTP), "spec.initContainers[0].readinessProbe: Forbidden", (1, 30)),
    ("init-startup", _set(_init, "startupProbe", HTTP), "spec.initContainers[0].startupProbe: Forbidden", (1, 30)),
    ("sidecar-liveness-success-threshold", _set(lambda p: _sidecar(p)["livenessProbe"], "successThreshold", 2), "spec.initContainers[1].livenessProbe.successThreshold: Invalid value 2: must be 1", (1, 30)),
    ("sidecar-startup-success-threshold", _set(lambda p: _sidecar(p)["startupProbe"], "successThreshold", 3), "spec.initContainers[1].startupProbe.successThreshold: Invalid value 3: must be 1", (1, 30)),
    # probes
    ("liveness-success-threshold", _set(lambda p: _app(p)["livenessProbe"], "successThreshold", 2), "spec.containers[0].livenessProbe.successThreshold: Invalid value 2: must be 1", (1, 30)),
    ("startup-success-threshold", _set(_app, "startupProbe", {**HTTP, "successThreshold": 2}), "spec.containers[0].startupProbe.successThreshold", (1, 30)),
    ("readiness-termination-grace", _set(lambda p: _app(p)["readinessProbe"], "terminationGracePeriodSeconds", 10), "readinessProbe.terminationGracePeriodSeconds: Invalid value: must not be set for readinessProbes", (1, 30)),
    ("probe-termination-grace-zero", _set(lambda p: _app(p)["livenessProbe"], "terminationGracePeriodSeconds", 0), "livenessProbe.terminationGracePeriodSeconds: must be greater than 0", (1, 30)),
    ("probe-no-handler", _set(_app, "readinessProbe", {"periodSeconds": 5}), "spec.containers[0].readinessProbe: Required value: must specify a handler type", (1, 30)),
    ("probe-two-handlers", _set(_app, "readinessProbe", {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}), "readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type", (1, 30)),
    ("probe-period-zero", _set(lambda p: _app(p)["readinessProbe"], "periodSeconds", 0), "readinessProbe.periodSeconds: Invalid value 0: must be >= 1", (1, 30)),
    ("probe-timeout-zero", _set(lambda p: _app(p)["readinessProbe"], "timeoutSeconds", 0), "readinessProbe.timeoutSeconds: Invalid value 0: must be >= 1", (1, 30)),
    ("probe-failure-threshold-zero", _set(lambda p: _app(p)["readinessProbe"], "failureThreshold", 0), "readinessProbe.failureThreshold: Invalid value 0: must be >= 1", (1, 30)),
    ("probe-success-threshold-zero", _set(lambda p: _app(p)["readinessProbe"], "successThreshold", 0), "readinessProbe.successThreshold: Invalid value 0: must be >= 1", (1, 30)),
    ("probe-initial-delay-negative", _set(lambda p: _app(p)["readinessProbe"], "initialDelaySeconds", -1), "readinessProbe.initialDelaySeconds: Invalid value -1: must be >= 0", (1, 30)),
    ("probe-exec-empty-command", _set(_app, "readinessProbe", {"exec": {"command": []}}), "readinessProbe.exec.command: Required value", (1, 30)),
    ("probe-http-port-zero", _set(_app, "readinessProbe", {"httpGet": {"port": 0}}), "readinessProbe.httpGet.port: Invalid value 0", (1, 30)),
    ("probe-http-port-too-big", _set(_app, "readinessProbe", {"httpGet": {"port": 70000}}), "between 1 and 65535", (1, 30)),
    ("probe-http-port-bad-name", _set(_app, "readinessProbe", {"httpGet": {"port": "HTTP_PORT"}}), "readinessProbe.httpGet.port: Invalid value 'HTTP_PORT': named port", (1, 30)),
    ("probe-http-scheme", _set(_app, "readinessProbe", {"httpGet": {"port": 80, "scheme": "FTP"}}), "httpGet.scheme: Unsupported value 'FTP'", (1, 30)),
    ("probe-http-header-name", _set(_app, "readinessProbe", {"httpGet": {"port": 80, "httpHeaders": [{"name": "Bad Header", "value": "x"}]}}), "httpHeaders[0].name: Invalid value 'Bad Header'", (1, 30)),
    ("probe-grpc-port-zero", _set(_app, "readinessProbe", {"grpc": {"port": 0}}), "readinessProbe.grpc.port: Invalid value 0", (1, 30)),
    ("probe-sleep-handler", _set(_app, "readinessProbe", {"sleep": {"seconds": 1}}), "readinessProbe.sleep: Forbidden: sleep is not a valid handler here", (1, 30)),
    # lifecycle
    ("lifecycle-no-handler", _set(lambda p: _app(p)["lifecycle"], "postStart", {}), "lifecycle.postStart: Required value: must specify a handler type", (1, 30)),
    ("lifecycle-two-handlers", _set(lambda p: _app(p)["lifecycle"], "preStop", {"exec": {"command": ["true"]}, "sleep": {"seconds": 1}}), "lifecycle.preStop.sleep: Forbidden: may not specify more than 1 handler type", (1, 30)),
    ("lifecycle-grpc-handler", _set(lambda p: _app(p)["lifecycle"], "preStop", {"grpc": {"port": 8080}}), "lifecycle.preStop.grpc: Forbidden: grpc is not a valid handler here", (1, 30)),
    ("sleep-before-1.30", lambda p: None, "spec.containers[0].lifecycle.preStop.sleep: Forbidden: the sleep action needs Kubernetes >= 1.30", (1, 29)),
    ("sleep-zero-before-1.33", _set(lambda p: _app(p)["lifecycle"]["preStop"]["sleep"], "seconds", 0), "preStop.sleep.seconds: Invalid value 0: must be greater than 0", (1, 30)),
    ("sleep-negative-1.33", _set(lambda p: _app(p)["lifecycle"]["preStop"]["sleep"], "seconds", -1), "preStop.sleep.seconds: Invalid value -1: must be non-negative", (1, 33)),
    ("sleep-longer-than-grace", _set(lambda p: _app(p)["lifecycle"]["preStop"]["sleep"], "seconds", 46), "at most terminationGracePeriodSeconds (45)", (1, 30)),
    ("sleep-longer-than-default-grace", lambda p: _spec(p).pop("terminationGracePeriodSeconds"), "preStop.sleep.seconds: Invalid value 45: must be greater than 0 and at most terminationGracePeriodSeconds (30)", (1, 30)),
    ("sidecar-sleep-longer-than-grace", _set(_spec, "terminationGracePeriodSeconds", 4), "spec.initContainers[1].lifecycle.preStop.sleep.seconds: Invalid value 5", (1, 30)),
    # pod-level
    ("hostpid-and-share-process-namespace", _set(_spec, "hostPID", True), "spec.shareProcessNamespace: Invalid value: ShareProcessNamespace and HostPID cannot both be enabled", (1, 30)),
    ("termination-grace-negative", _set(_spec, "terminationGracePeriodSeconds", -1), "spec.terminationGracePeriodSeconds: must be >= 0", (1, 30)),
    ("active-deadline-zero", _set(_spec, "activeDeadlineSeconds", 0), "spec.activeDeadlineSeconds", (1, 30)),
    ("pod-restart-policy", _set(_spec, "restartPolicy", "Sometimes"), "spec.restartPolicy: Unsupported value 'Sometimes'", (1, 30)),
    ("dns-policy-none-without-config", _set(_spec, "dnsPolicy", "None"), "spec.dnsConfig.nameservers: Required value", (1, 30)),
    ("service-account-name", _set(_spec, "serviceAccountName", "Web_SA"), "spec.serviceAccountName", (1, 30)),
    ("no-containers", _set(_spec, "containers", []), "spec.containers: Required value", (1, 30)),
    ("ephemeral-on-create", _set(_spec, "ephemeralContainers", [{"name": "debug", "image": "busybox", "targetContainerName": "app"}]), "spec.ephemeralContainers: Forbidden: cannot be set on create", (1, 30)),
    ("ephemeral-name-duplicate", _set(_spec, "ephemeralContainers", [{"name": "proxy", "image": "busybox"}]), "spec.ephemeralContainers[0].name: Duplicate value 'proxy'", (1, 30)),
    ("ephemeral-ports", _set(_spec, "ephemeralContainers", [{"name": "debug", "image": "busybox", "ports": [{"containerPort": 80}]}]), "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container", (1, 30)),
    ("ephemeral-unknown-target", _set(_spec, "ephemeralContainers", [{"name": "debug", "image": "busybox", "targetContainerName": "ghost"}]), "targetContainerName: Not found: 'ghost'", (1, 30)),
    ("host-users-false-with-host-network", _do(_set(_spec, "hostNetwork", True), lambda p: _spec(p)["securityContext"].update(hostUsers=False)), "spec.hostNetwork: Forbidden: when `hostUsers` is false", (1, 30)),
    ("pod-run-as-user-negative", lambda p: _spec(p)["securityContext"].update(runAsUser=-1), "spec.securityContext.runAsUser: must be between 0 and 2147483647", (1, 30)),
    ("seccomp-localhost-without-profile", lambda p: _spec(p)["securityContext"].update(seccompProfile={"type": "Localhost"}), "seccompProfile.localhostProfile: Required value", (1, 30)),
    ("toleration-exists-with-value", lambda p: _spec(p)["tolerations"].append({"key": "k", "operator": "Exists", "value": "v"}), "spec.tolerations[2].operator: value must be empty when `operator` is 'Exists'", (1, 30)),
    ("toleration-seconds-without-noexecute", lambda p: _spec(p)["tolerations"].append({"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}), "spec.tolerations[2].effect", (1, 30)),
    # ports
    ("host-port-conflict", _port({"containerPort": 8081, "hostPort": 9090}, getter=lambda p: _spec(p)["containers"][1]), "spec.containers[1].ports[0].hostPort: Duplicate value 'TCP//9090'", (1, 30)),
    ("host-port-conflict-within-init", _port({"containerPort": 9001, "hostPort": 9000}, getter=_init), "spec.initContainers[0].ports[1].hostPort: Duplicate value 'TCP//9000'", (1, 30)),
    ("host-network-host-port-mismatch", _do(_set(_spec, "hostNetwork", True), _port({"containerPort": 7000, "hostPort": 7001})), "spec.containers[0].ports[3].hostPort: Invalid value: must match `containerPort` when `hostNetwork` is true", (1, 30)),
    ("port-name-duplicate", _port({"name": "http", "containerPort": 8443}), "spec.containers[0].ports[3].name: Duplicate value 'http'", (1, 30)),
    ("port-name-too-long", _port({"name": "a-very-long-port", "containerPort": 8443}), "no more than 15 characters", (1, 30)),
    ("port-name-no-letter", _port({"name": "8443", "containerPort": 8443}), "must contain at least one letter", (1, 30)),
    ("port-name-uppercase", _port({"name": "HTTPS", "containerPort": 8443}), "must contain only lowercase alphanumerics", (1, 30)),
    ("port-name-double-hyphen", _port({"name": "my--port", "containerPort": 8443}), "consecutive hyphens", (1, 30)),
    ("container-port-zero", _port({"containerPort": 0}), "spec.containers[0].ports[3].containerPort: Invalid value 0", (1, 30)),
    ("port-protocol", _port({"containerPort": 53, "protocol": "ICMP"}), "ports[3].protocol: Unsupported value 'ICMP'", (1, 30)),
    # env
    ("env-name-invalid-1.30", _env({"name": "1BAD", "value": "x"}), "spec.containers[0].env[8].name: Invalid value '1BAD'", (1, 30)),
    ("env-name-space-1.30", _env({"name": "MY VAR", "value": "x"}), "env[8].name: Invalid value 'MY VAR'", (1, 31)),
    ("env-name-equals-relaxed", _env({"name": "A=B", "value": "x"}), "env[8].name: Invalid value 'A=B': must consist of printable ASCII characters except '='", (1, 37)),
    ("env-name-empty", _env({"name": "", "value": "x"}), "env[8].name: Required value", (1, 30)),
    ("env-fieldref-not-allowed", _env({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}}), "env[8].valueFrom.fieldRef.fieldPath: Unsupported value 'spec.containers'", (1, 30)),
    ("env-fieldref-labels-without-subscript", _env({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}), "Unsupported value 'metadata.labels'", (1, 30)),
    ("env-fieldref-bad-subscript", _env({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name['x']"}}}), "only metadata.labels and metadata.annotations support a subscript", (1, 30)),
    ("env-fieldref-bad-label-key", _env({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['-bad-']"}}}), "fieldPath: Invalid value \"metadata.labels['-bad-']\": subscript", (1, 30)),
    ("env-fieldref-api-version", _env({"name": "X", "valueFrom": {"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}}), "fieldRef.apiVersion: Invalid value 'v2'", (1, 30)),
    ("env-value-and-value-from", _env({"name": "X", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}), "env[8].valueFrom: Invalid value: may not be specified when `value` is not empty", (1, 30)),
    ("env-value-from-two-sources", _env({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}, "secretKeyRef": {"name": "s", "key": "k"}}}), "may not have more than one field specified at a time", (1, 30)),
    ("env-value-from-empty", _env({"name": "X", "valueFrom": {}}), "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`", (1, 30)),
    ("env-configmap-key-missing", _env({"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": ""}}}), "configMapKeyRef.key: Required value", (1, 30)),
    ("env-secret-key-invalid", _env({"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a/b"}}}), "secretKeyRef.key: Invalid value 'a/b'", (1, 30)),
    ("env-resource-field-ref", _env({"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}), "resourceFieldRef.resource: Unsupported value 'limits.gpu'", (1, 30)),
    ("env-from-two-sources", lambda p: _app(p)["envFrom"].append({"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}), "spec.containers[0].envFrom[1]: Invalid value: must specify exactly one", (1, 30)),
    ("env-from-bad-prefix", lambda p: _app(p)["envFrom"].append({"prefix": "1X", "secretRef": {"name": "b"}}), "envFrom[1].prefix: Invalid value '1X'", (1, 30)),
    # downward API volume, projected
    ("dapi-volume-field-not-allowed", _dapi_item({"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}), "spec.volumes[3].downwardAPI.items[5].fieldRef.fieldPath: Unsupported value 'status.podIP'", (1, 30)),
    ("dapi-volume-absolute-path", _dapi_item({"path": "/etc/name", "fieldRef": {"fieldPath": "metadata.name"}}), "items[5].path: Invalid value '/etc/name': must be a relative path", (1, 30)),
    ("dapi-volume-backsteps", _dapi_item({"path": "a/../../name", "fieldRef": {"fieldPath": "metadata.name"}}), "items[5].path: Invalid value 'a/../../name': must not contain '..'", (1, 30)),
    ("dapi-volume-starts-with-dotdot", _dapi_item({"path": "..name", "fieldRef": {"fieldPath": "metadata.name"}}), "must not start with '..'", (1, 30)),
    ("dapi-volume-both-refs", _dapi_item({"path": "x", "fieldRef": {"fieldPath": "metadata.name"}, "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"}}), "fieldRef and resourceFieldRef can not be specified simultaneously", (1, 30)),
    ("dapi-volume-no-ref", _dapi_item({"path": "x"}), "one of fieldRef and resourceFieldRef is required", (1, 30)),
    ("dapi-volume-resource-without-container", _dapi_item({"path": "x", "resourceFieldRef": {"resource": "limits.cpu"}}), "resourceFieldRef.containerName: Required value", (1, 30)),
    ("sa-token-expiration-too-short", lambda p: _vol(p, "token")["projected"]["sources"][0]["serviceAccountToken"].update(expirationSeconds=599), "serviceAccountToken.expirationSeconds: may not specify a duration less than 10 minutes", (1, 30)),
    ("sa-token-expiration-too-long", lambda p: _vol(p, "token")["projected"]["sources"][0]["serviceAccountToken"].update(expirationSeconds=2**32 + 1), "may not specify a duration larger than 2^32 seconds", (1, 30)),
    ("sa-token-absolute-path", lambda p: _vol(p, "token")["projected"]["sources"][0]["serviceAccountToken"].update(path="/token"), "serviceAccountToken.path: Invalid value '/token': must be a relative path", (1, 30)),
    ("projected-duplicate-paths", _projected({"secret": {"name": "s", "items": [{"key": "k", "path": "ca.crt"}]}}), "conflicting duplicate paths", (1, 30)),
    ("projected-two-kinds-in-source", _projected({"secret": {"name": "s"}, "configMap": {"name": "c"}}), "may not specify more than 1 volume type per source", (1, 30)),
    # metadata
    ("pod-name-invalid", lambda p: p["metadata"].update(name="Demo_Pod"), "metadata.name: invalid Pod name 'Demo_Pod'", (1, 30)),
    ("generate-name-invalid", lambda p: p["metadata"].update(generateName="Web-"), "metadata.generateName", (1, 30)),
    ("namespace-invalid", lambda p: p["metadata"].update(namespace="shop.prod"), "metadata.namespace", (1, 30)),
    ("annotation-key-invalid", lambda p: p["metadata"]["annotations"].update({"bad key!": "x"}), "metadata.annotations['bad key!']: invalid annotation key", (1, 30)),
    ("annotation-key-bad-prefix", lambda p: p["metadata"]["annotations"].update({"Example_Com/x": "x"}), "prefix part", (1, 30)),
    ("annotation-key-two-slashes", lambda p: p["metadata"]["annotations"].update({"a/b/c": "x"}), "at most one '/'", (1, 30)),
    ("annotations-too-large", lambda p: p["metadata"]["annotations"].update({"big": "x" * (256 * 1024)}), "metadata.annotations: Too long", (1, 30)),
    ("label-value-invalid", lambda p: p["metadata"]["labels"].update(app="-web-"), "metadata.labels.app: invalid label value '-web-'", (1, 30)),
    ("label-key-invalid", lambda p: p["metadata"]["labels"].update({"bad key": "x"}), "metadata.labels['bad key']: invalid label key", (1, 30)),
    # container fields
    ("image-missing", _set(_app, "image", ""), "spec.containers[0].image: Required value", (1, 30)),
    ("image-whitespace", _set(_app, "image", " nginx"), "spec.containers[0].image: must not have leading or trailing whitespace", (1, 30)),
    ("image-pull-policy", _set(_app, "imagePullPolicy", "Sometimes"), "imagePullPolicy: Unsupported value 'Sometimes'", (1, 30)),
    ("termination-message-policy", _set(_app, "terminationMessagePolicy", "Log"), "terminationMessagePolicy: Unsupported value 'Log'", (1, 30)),
    ("request-above-limit", lambda p: _app(p)["resources"]["requests"].update(cpu="1500m"), "spec.containers[0].resources.requests: Invalid value '1500m': must be less than or equal to cpu limit of 1", (1, 30)),
    ("sidecar-request-above-limit", lambda p: _sidecar(p)["resources"]["requests"].update(memory="1Gi"), "spec.initContainers[1].resources.requests: Invalid value '1Gi': must be less than or equal to memory limit of 128Mi", (1, 30)),
    ("quantity-invalid", lambda p: _app(p)["resources"]["requests"].update(cpu="1.5 cores"), "resources.requests.cpu: Invalid value '1.5 cores': not a valid resource quantity", (1, 30)),
    ("quantity-negative", lambda p: _app(p)["resources"]["limits"].update(memory="-1Gi"), "resources.limits.memory: Invalid value '-1Gi': must be greater than or equal to 0", (1, 30)),
    ("resource-name-unknown", lambda p: _app(p)["resources"]["limits"].update(gpu="1"), "resources.limits.gpu: Invalid value 'gpu': must be a standard resource for containers", (1, 30)),
    ("extended-resource-fraction", lambda p: _app(p)["resources"]["limits"].update({"example.com/gpu": "500m"}), "must be an integer (extended resource)", (1, 30)),
    ("extended-resource-request-without-limit", lambda p: _app(p)["resources"]["requests"].update({"example.com/fpga": "1"}), "resources.limits: Required value: limit must be set for non overcommitable resource example.com/fpga", (1, 30)),
    ("hugepages-request-not-limit", lambda p: _app(p)["resources"].update(requests={"hugepages-2Mi": "2Mi", "memory": "1Gi"}, limits={"hugepages-2Mi": "4Mi", "memory": "1Gi"}), "must be equal to hugepages-2Mi limit of 4Mi", (1, 30)),
    ("allow-escalation-false-privileged", lambda p: _sidecar(p)["securityContext"].update(privileged=True), "spec.initContainers[1].securityContext: Invalid value: cannot set `allowPrivilegeEscalation` to false and `privileged` to true", (1, 30)),
    ("allow-escalation-false-sys-admin", lambda p: _sidecar(p)["securityContext"].update(capabilities={"add": ["CAP_SYS_ADMIN"]}), "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN", (1, 30)),
    ("container-run-as-user-too-big", lambda p: _app(p)["securityContext"].update(runAsUser=2**31), "spec.containers[0].securityContext.runAsUser: must be between 0 and 2147483647", (1, 30)),
    # pod-level resources (1.34+)
    ("pod-requests-below-aggregate", _set(_spec, "resources", {"requests": {"cpu": "300m"}}), "spec.resources.requests.cpu: Invalid value: must be greater than or equal to aggregate container requests of 0.350", (1, 34)),
    ("container-limit-above-pod-limit", _set(_spec, "resources", {"limits": {"cpu": "4", "memory": "1Gi"}}), "spec.containers[0].resources.limits.memory: Invalid value: must be less than or equal to pod limits", (1, 34)),
    ("pod-level-unsupported-resource", _set(_spec, "resources", {"limits": {"cpu": "4", "memory": "4Gi", "ephemeral-storage": "1Gi"}}), "spec.resources.limits['ephemeral-storage']: Unsupported value", (1, 34)),
]


@pytest.mark.parametrize(("mutate", "expected", "version"), [pytest.param(m, e, v, id=i) for i, m, e, v in CASES])
def test_each_rule_is_enforced(mutate: Mutate, expected: str, version: tuple[int, int]) -> None:
    pod = rich_pod()
    # The base Pod uses sidecars and sleep (1.30): for the version-gated cases the older
    # version is the only change, so the base is checked where it is valid.
    assert semantic_errors(pod, max(version, (1, 30))) == [], "the base Pod must be valid so that only the mutation is reported"
    mutate(pod)
    errors = semantic_errors(pod, version)
    assert any(expected in e for e in errors), f"expected an error containing {expected!r}, got {errors}"


def test_case_ids_are_unique() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


VALID_VARIATIONS: list[tuple[str, Mutate, tuple[int, int]]] = [
    ("env-duplicates-allowed", _env({"name": "POD_NAME", "value": "override"}), (1, 30)),
    ("env-name-space-relaxed-1.32", _env({"name": "MY VAR", "value": "x"}), (1, 32)),
    ("sleep-zero-from-1.33", _set(lambda p: _app(p)["lifecycle"]["preStop"]["sleep"], "seconds", 0), (1, 33)),
    ("same-host-port-other-protocol", _port({"containerPort": 8081, "hostPort": 9090, "protocol": "UDP"}, getter=lambda p: _spec(p)["containers"][1]), (1, 30)),
    ("same-host-port-other-host-ip", _port({"containerPort": 8081, "hostPort": 9090, "hostIP": "10.0.0.1"}, getter=lambda p: _spec(p)["containers"][1]), (1, 30)),
    ("host-network-host-port-equal", _do(_set(_spec, "hostNetwork", True), _port({"containerPort": 7000, "hostPort": 7000})), (1, 30)),
    ("host-network-host-port-unset", _do(_set(_spec, "hostNetwork", True), _port({"containerPort": 7000})), (1, 30)),
    ("bidirectional-privileged", _do(lambda p: _app(p)["securityContext"].update(privileged=True), _mount({"name": "data", "mountPath": "/x", "mountPropagation": "Bidirectional"})), (1, 30)),
    ("probe-zero-values-unset", _set(_app, "readinessProbe", {"exec": {"command": ["true"]}}), (1, 30)),
    ("lifecycle-tcp-socket-deprecated-but-accepted", _set(lambda p: _app(p)["lifecycle"], "postStart", {"tcpSocket": {"port": 80}}), (1, 30)),
    ("annotation-key-uppercase-lowered", lambda p: p["metadata"]["annotations"].update({"Example.com/Key": "x"}), (1, 30)),
    ("termination-grace-zero", _do(_set(_spec, "terminationGracePeriodSeconds", 0), lambda p: _app(p).pop("lifecycle"), lambda p: _sidecar(p).pop("lifecycle")), (1, 30)),
    ("pod-level-resources-covering", _set(_spec, "resources", {"requests": {"cpu": "350m", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}}), (1, 34)),
    ("pod-level-resources-ignored-before-1.34", _set(_spec, "resources", {"requests": {"cpu": "1m"}}), (1, 30)),
    ("no-name-no-generate-name", lambda p: p["metadata"].pop("name"), (1, 30)),
    ("sa-token-default-expiration", lambda p: _vol(p, "token")["projected"]["sources"][0]["serviceAccountToken"].pop("expirationSeconds"), (1, 30)),
    ("extended-resource-request-equals-limit", lambda p: _app(p)["resources"]["requests"].update({"example.com/gpu": "1"}), (1, 30)),
]


@pytest.mark.parametrize(("mutate", "version"), [pytest.param(m, v, id=i) for i, m, v in VALID_VARIATIONS])
def test_valid_variations_pass(mutate: Mutate, version: tuple[int, int]) -> None:
    pod = rich_pod()
    mutate(pod)
    assert semantic_errors(pod, version) == []


def test_errors_name_path_and_rule() -> None:
    pod = rich_pod()
    _app(pod)["restartPolicy"] = "Always"
    _spec(pod)["hostPID"] = True
    errors = semantic_errors(pod)
    assert errors == [
        "spec.shareProcessNamespace: Invalid value: ShareProcessNamespace and HostPID cannot both be enabled",
        "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers",
    ]


def test_semantic_errors_tolerates_garbage() -> None:
    assert semantic_errors({}) == ["spec: Required value: a Pod needs a spec"]
    assert semantic_errors([]) == ["<root>: must be an object"]  # type: ignore[arg-type]
    odd = {"spec": {"containers": ["x", None, {"name": "a", "image": "b", "ports": "nope", "env": [None]}], "volumes": [None]}}
    assert semantic_errors(odd) == []  # shapes are the schema's business; no crash


# --------------------------------------------------------------------------- schema layer


def test_schema_rejects_unknown_fields_and_wrong_types() -> None:
    pod = minimal_pod()
    _app(pod)["imagePullPolicyy"] = "Always"
    _app(pod)["ports"] = [{"containerPort": "80"}]
    errors = schema_errors(pod, "1.30")
    assert errors == [
        "schema 1.30: spec.containers[0]: Additional properties are not allowed ('imagePullPolicyy' was unexpected)",
        "schema 1.30: spec.containers[0].ports[0].containerPort: '80' is not of type 'integer'",
    ]


def test_schema_knows_fields_per_version() -> None:
    pod = minimal_pod()
    pod["spec"]["resources"] = {"limits": {"cpu": "1"}}  # pod-level resources: not in 1.30
    assert any("'resources' was unexpected" in e for e in schema_errors(pod, "1.30"))
    assert schema_errors(pod, LATEST_SCHEMA) == []


@pytest.mark.parametrize("version", ["1.30", "1.30.0", "v1.30", "1.30.7"])
def test_schema_version_spellings(version: str) -> None:
    pod = minimal_pod()
    _app(pod)["bogus"] = 1
    assert schema_errors(pod, version) == ["schema 1.30: spec.containers[0]: Additional properties are not allowed ('bogus' was unexpected)"]


def test_schema_unsupported_version_raises() -> None:
    with pytest.raises(ValueError, match="no schemas for Kubernetes 1.99"):
        schema_errors(minimal_pod(), "1.99")
    with pytest.raises(ValueError, match="no schemas"):
        schema_errors(minimal_pod(), "1.2")


def test_schema_removed_api_is_an_error_not_an_exception() -> None:
    cronjob = {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {}}
    assert schema_errors(cronjob, "1.30") == ["schema 1.30: <root>: no schema for batch/v1beta1 CronJob (API removed or unknown in this version)"]
    assert schema_errors({"kind": "Pod"}, "1.30") == ["schema 1.30: <root>: apiVersion and kind are required to pick a schema"]


def test_schema_validator_is_cached() -> None:
    schema_errors(minimal_pod(), "1.30")
    assert _validator("1.30.0", "Pod", "v1") is _validator("1.30.0", "Pod", "v1")


@pytest.mark.parametrize("mutate", [lambda p: None, lambda p: _app(p).update(bogus=1), lambda p: _app(p).update(ports=[{"containerPort": "x"}])])
def test_schema_agrees_with_kubernetes_validate(mutate: Mutate) -> None:
    """Our cached validator is kubernetes_validate.validate(strict=True), reporting all errors instead of the first."""
    pod = rich_pod()
    mutate(pod)
    ours = schema_errors(pod, "1.30")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(importlib_resources|kubernetes_validate)")
        try:
            kubernetes_validate.validate(pod, "1.30", strict=True)
            theirs = None
        except kubernetes_validate.ValidationError as error:
            theirs = error
    if theirs is None:
        assert ours == []
    else:
        path = ".".join(str(p) for p in theirs.path)
        assert any(theirs.message in e for e in ours), (path, theirs.message, ours)


def test_pod_errors_combines_layers_and_adds_kind() -> None:
    pod = {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "a", "image": "b", "restartPolicy": "Always", "bogus": True}]}}
    errors = pod_errors(pod, "1.30")
    assert "schema 1.30: spec.containers[0]: Additional properties are not allowed ('bogus' was unexpected)" in errors
    assert "semantic 1.30: spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers" in errors
    assert "apiVersion" not in pod


def test_assert_valid_pod_lists_every_error() -> None:
    pod = rich_pod()
    _app(pod)["bogus"] = 1
    _spec(pod)["hostPID"] = True
    with pytest.raises(AssertionError) as info:
        assert_valid_pod(pod)
    message = str(info.value)
    latest = ".".join(LATEST_SCHEMA.split(".")[:2])
    assert "schema 1.30: spec.containers[0]: Additional properties are not allowed ('bogus' was unexpected)" in message
    assert f"schema {latest}: spec.containers[0]: Additional properties are not allowed ('bogus' was unexpected)" in message
    assert "semantic 1.30: spec.shareProcessNamespace" in message and f"semantic {latest}: spec.shareProcessNamespace" in message
    assert "(4 errors)" in message


@pytest.mark.parametrize(
    ("text", "value"),
    [("100m", "0.1"), ("1", "1"), ("1.5Gi", str(int(1.5 * 2**30))), ("1e3", "1000"), ("2k", "2000"), (2, "2"), (0.5, "0.5"), ("+1Mi", str(2**20))],
)
def test_parse_quantity(text: Any, value: str) -> None:
    from decimal import Decimal

    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "1.5 cores", "Gi", "1Gb", "1..2", True, None, "1e"])
def test_parse_quantity_rejects(text: Any) -> None:
    assert parse_quantity(text) is None


# --------------------------------------------------------------------------- corpus

# Real manifests that use fields newer than Kubernetes 1.30: the 1.30 schema rightly rejects
# them as unknown fields (kubectl's strict field validation would too); the newest schema
# accepts them. Each entry names the only errors expected.
TOO_NEW_FOR_1_30 = {
    "k8s-website__content__en__examples__pods__resource__pod-level-resources.yaml#0": (
        "'resources' was unexpected",
        "pod-level spec.resources (PodLevelResources, KEP-2837) is alpha in 1.32, beta in 1.34",
    ),
    "k8s-website__content__en__examples__pods__restart-policy__restart-all-containers.yaml#0": (
        "'restartPolicyRules' was unexpected",
        "container restartPolicyRules (KEP-5307) are alpha from 1.34",
    ),
}
# Workloads whose own apiVersion no longer exists: their Pod templates are fine, the object is not.
REMOVED_APIS = {
    "k8s-website__content__en__examples__application__job__cronjob.yaml#0": (
        "no schema for batch/v1beta1 CronJob",
        "batch/v1beta1 CronJob was removed in Kubernetes 1.25 (use batch/v1)",
    ),
}


def _corpus_params() -> list[Any]:
    entries = corpus_workloads()
    if not entries:
        return [pytest.param(None, None, None, id="no-corpus")]
    return [pytest.param(ident, workload, ref, id=ident) for ident, workload, ref in entries]


CORPUS = _corpus_params()


def _expect_documented_failure(ident: str, errors: list[str], table: dict[str, tuple[str, str]]) -> None:
    """Pass when clean; xfail (with the documented reason) only when the errors are exactly the documented ones."""
    if ident in table:
        needle, reason = table[ident]
        assert errors and all(needle in e for e in errors), f"{ident}: expected only {needle!r} errors, got {errors}"
        pytest.xfail(reason)
    assert errors == []


@pytest.mark.parametrize(("ident", "workload", "ref"), CORPUS)
def test_corpus_template_semantics(ident: str, workload: dict, ref: Any) -> None:
    require_corpus()
    assert semantic_errors(as_pod(workload, ref), (1, 30)) == []


@pytest.mark.parametrize(("ident", "workload", "ref"), CORPUS)
def test_corpus_template_schema_1_30(ident: str, workload: dict, ref: Any) -> None:
    require_corpus()
    _expect_documented_failure(ident, schema_errors(as_pod(workload, ref), "1.30"), TOO_NEW_FOR_1_30)


@pytest.mark.parametrize(("ident", "workload", "ref"), CORPUS)
def test_corpus_template_valid_at_latest(ident: str, workload: dict, ref: Any) -> None:
    require_corpus()
    assert pod_errors(as_pod(workload, ref), LATEST_SCHEMA) == []


@pytest.mark.parametrize(("ident", "workload", "ref"), CORPUS)
def test_corpus_workload_schema_1_30(ident: str, workload: dict, ref: Any) -> None:
    require_corpus()
    _expect_documented_failure(ident, schema_errors(workload, "1.30"), TOO_NEW_FOR_1_30 | REMOVED_APIS)


def test_corpus_covers_every_workload_kind() -> None:
    require_corpus()
    kinds = {ref.kind for _, _, ref in corpus_workloads()}
    assert kinds == {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}
    listed = [ident for ident, _, ref in corpus_workloads() if ref.path[:1] == ("items",)]
    assert listed, "the corpus has a kind: List"


def test_documented_corpus_exceptions_exist() -> None:
    require_corpus()
    idents = {ident for ident, _, _ in corpus_workloads()}
    assert set(TOO_NEW_FOR_1_30) | set(REMOVED_APIS) <= idents, f"stale exception entries for {CORPUS_DIR}"


def test_statefulset_claims_become_volumes() -> None:
    """as_pod adds what the StatefulSet controller adds, or mounts of claims would name no volume."""
    workload = {
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "db", "image": "db", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}],
        },
    }
    from webhook.workloads import iter_pod_templates

    (ref,) = iter_pod_templates(workload)
    before = copy.deepcopy(workload)
    pod = as_pod(workload, ref)
    assert pod["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]
    assert workload == before
    assert semantic_errors(pod) == []
    assert any("Not found: 'data'" in e for e in semantic_errors({"spec": ref.template["spec"]}))
