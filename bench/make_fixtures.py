"""Write the benchmark's AdmissionReview fixtures: a typical (~6 KB) and a big (~50 KB) Pod.

`python -m bench.make_fixtures` rewrites bench/fixtures/{typical,big}.review.json. The output
is deterministic (no clocks, no randomness), so rerunning it changes nothing unless this file
changed.

What the API server really sends a mutating webhook on a Pod CREATE from a Deployment's
ReplicaSet: the object after the built-in admission plugins ran (service-account token volume
and mount, default tolerations, defaulted fields such as terminationMessagePath,
imagePullPolicy, schedulerName, enableServiceLinks), managedFields from the controller, and
the request envelope with userInfo. The sizes are of the compact JSON the API server sends.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NAMES = ("typical", "big")

Obj = dict[str, Any]


def _env(container: str, count: int) -> list[Obj]:
    """A realistic env mix: plain values, Secret and ConfigMap keys, the Downward API."""
    env: list[Obj] = []
    for i in range(count):
        kind = i % 5
        name = f"{container.upper().replace('-', '_')}_SETTING_{i:02d}"
        if kind == 0:
            env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": f"{container}-secrets", "key": f"key-{i}"}}})
        elif kind == 1:
            env.append({"name": name, "valueFrom": {"configMapKeyRef": {"name": f"{container}-config",
                                                                        "key": f"setting.{i}", "optional": True}}})
        elif kind == 2:
            env.append({"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['app']"}}})
        else:
            env.append({"name": name, "value": f"value-{i}-" + "x" * (i % 7 * 3)})
    return env


def _container(name: str, image: str, port: int | None, env: int, mounts: list[str], probes: bool,
               env_from: bool = True) -> Obj:
    container: Obj = {
        "name": name,
        "image": image,
        "args": ["--config=/etc/{0}/{0}.yaml".format(name), "--log-format=json", "--log-level=info"],
        "env": _env(name, env),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": m, "mountPath": f"/etc/{name}/{m}", "readOnly": True} for m in mounts]
        + [{"name": "kube-api-access-7k2xq", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
    }
    if env_from:
        container["envFrom"] = [{"configMapRef": {"name": f"{name}-env"}}]
    if port is not None:
        container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"},
                              {"name": "metrics", "containerPort": port + 1000, "protocol": "TCP"}]
        if probes:
            container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": port, "scheme": "HTTP"},
                                           "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1,
                                           "failureThreshold": 3}
            container["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
                                          "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1,
                                          "successThreshold": 1, "failureThreshold": 3}
    return container


def _volumes(names: list[str]) -> list[Obj]:
    volumes: list[Obj] = []
    for i, name in enumerate(names):
        if i % 3 == 0:
            volumes.append({"name": name, "configMap": {"name": name, "defaultMode": 420}})
        elif i % 3 == 1:
            volumes.append({"name": name, "secret": {"secretName": name, "defaultMode": 420}})
        else:
            volumes.append({"name": name, "emptyDir": {"sizeLimit": "1Gi"}})
    volumes.append({"name": "kube-api-access-7k2xq", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}})
    return volumes


def _managed_fields(containers: list[Obj], volumes: list[Obj]) -> list[Obj]:
    """What kube-controller-manager's field manager records for the fields it set."""
    spec: Obj = {"f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                 "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}
    for container in containers:
        entry: Obj = {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                      "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}
        entry["f:env"] = {".": {}, **{f'k:{{"name":"{e["name"]}"}}': {".": {}, "f:name": {}} for e in container["env"]}}
        entry["f:volumeMounts"] = {}
        spec[f'f:containers/k:{{"name":"{container["name"]}"}}'] = entry
    spec["f:volumes"] = {".": {}, **{f'k:{{"name":"{v["name"]}"}}': {".": {}, "f:name": {}} for v in volumes}}
    return [{
        "manager": "kube-controller-manager",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2024-11-05T09:14:02Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}}, "f:ownerReferences": {".": {}}},
                     "f:spec": spec},
    }]


def pod(app: str, containers: list[Obj], init_containers: list[Obj], volume_names: list[str]) -> Obj:
    volumes = _volumes(volume_names)
    spec: Obj = {
        "containers": containers,
        "volumes": volumes,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": app,
        "serviceAccount": app,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 2000},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "priority": 0,
        "preemptionPolicy": "PreemptLowerPriority",
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                               "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}}}}]}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}}}],
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
        ],
    }
    if init_containers:
        spec["initContainers"] = init_containers
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": f"{app}-6b7f9c8d4-",
            "namespace": "shop",
            "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": f"{app}-prod",
                       "app.kubernetes.io/version": "2.14.1", "app.kubernetes.io/component": "backend",
                       "app.kubernetes.io/part-of": "shop", "pod-template-hash": "6b7f9c8d4"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                            "kubectl.kubernetes.io/restartedAt": "2024-11-05T09:13:58Z",
                            "checksum/config": "5f0c3a1e9d2b7c4a8e6f1d0b3a2c5e7f9d1b3a5c7e9f0d2b4a6c8e0f2a4b6c8d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-6b7f9c8d4",
                                 "uid": "8c1e0f3a-5b7d-4e2a-9c6f-0d1b3a5c7e9f", "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": _managed_fields(containers + init_containers, volumes),
        },
        "spec": spec,
        "status": {},
    }


def review(uid: str, obj: Obj) -> Obj:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "0b9c2d4e-6f8a-4c1e-b3d5-7f9a1c3e5b7d",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                    "system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def typical() -> Obj:
    """A web backend: the application and a metrics exporter, a handful of volumes (~6 KB)."""
    containers = [
        _container("api", "registry.example.com/shop/api:2.14.1", 8080, 3, ["api-config", "cache"], True),
        _container("exporter", "registry.example.com/shop/exporter:0.9", 9100, 1, [], False, env_from=False),
    ]
    return review("7f3c1a9e-2b4d-4c6e-8a0f-1d3b5c7e9a01", pod("api", containers, [], ["api-config", "cache"]))


def big() -> Obj:
    """A fat Pod: 8 containers and 3 init containers with long env lists, 24 volumes (~50 KB)."""
    volume_names = [f"vol-{i:02d}" for i in range(26)]
    containers = [
        _container(f"worker-{i}", f"registry.example.com/batch/worker-{i}:3.2.{i}", 8080 + i, 21,
                   volume_names[i * 3: i * 3 + 4], i % 2 == 0)
        for i in range(8)
    ]
    init = [_container(f"setup-{i}", "registry.example.com/batch/setup:1.0", None, 8, volume_names[i: i + 2], False)
            for i in range(3)]
    return review("7f3c1a9e-2b4d-4c6e-8a0f-1d3b5c7e9a02", pod("batch", containers, init, volume_names))


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    for name, obj in (("typical", typical()), ("big", big())):
        path = FIXTURES / f"{name}.review.json"
        path.write_text(json.dumps(obj, indent=1) + "\n")
        print(f"{path.name}: {len(compact(obj))} bytes compact")


if __name__ == "__main__":
    main()
