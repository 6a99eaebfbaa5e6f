"""webhook/repair.py: on reinvocation, what another webhook removed is added again where injection
had it; what it changed is reported and left; when nothing is missing nothing is added."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from webhook.config import Config, load_config_file, parse_config
from webhook.mutate import review
from webhook.uninject import uninject

from engine_support import BASE_CONFIG, apply, decoded_patch, pod_review, server_answer_differs
from k8s_checks import LATEST_SCHEMA, pod_errors, semantic_errors
from test_properties import pods

CONFIG = load_config_file(BASE_CONFIG)
STATUS = "sidecar-injector.io/status"


def injected(annotations: dict[str, str]) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "annotations": annotations},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
    outcome = review(pod_review(pod), CONFIG)
    assert outcome.patched_pod is not None
    return copy.deepcopy(outcome.patched_pod)


def reinvoked(pod: dict[str, Any], config: Config = CONFIG) -> Any:
    body = pod_review(pod)
    outcome = review(body, config)
    assert not server_answer_differs(body, config, outcome)
    return outcome


def repaired_pod(pod: dict[str, Any], config: Config = CONFIG) -> tuple[Any, dict[str, Any]]:
    outcome = reinvoked(pod, config)
    ops = decoded_patch(outcome)
    return outcome, pod if ops is None else apply(pod, ops)


def test_a_removed_legacy_sidecar_goes_back_in_front_in_order() -> None:
    pod = injected({"sidecar-injector.io/profiles": "agent,proxy", "sidecar-injector.io/native-sidecar": "false"})
    whole = copy.deepcopy(pod)
    assert [c["name"] for c in pod["spec"]["containers"]] == ["agent", "proxy", "app"]
    del pod["spec"]["containers"][1]  # proxy
    pod["spec"]["containers"].append({"name": "istio-proxy", "image": "istio/proxyv2"})  # the other webhook's
    outcome = reinvoked(pod)
    assert (outcome.decision, outcome.reason) == ("injected", "repaired")
    repaired = apply(pod, decoded_patch(outcome))
    assert [c["name"] for c in repaired["spec"]["containers"]] == ["agent", "proxy", "app", "istio-proxy"]
    assert repaired["spec"]["containers"][1] == whole["spec"]["containers"][1]
    assert pod_errors(repaired, LATEST_SCHEMA) == []
    again = reinvoked(repaired)
    assert again.reason == "already-injected" and again.patched_pod is None


def test_removed_native_sidecars_and_init_containers_go_back_where_they_were() -> None:
    pod = injected({"sidecar-injector.io/profiles": "agent,proxy"})
    whole = copy.deepcopy(pod)
    pod["spec"]["initContainers"] = [c for c in pod["spec"]["initContainers"] if c["name"] not in ("agent-init", "proxy")]
    del pod["spec"]["volumes"]
    outcome = reinvoked(pod)
    repaired = apply(pod, decoded_patch(outcome))
    assert repaired["spec"]["initContainers"] == whole["spec"]["initContainers"]
    assert sorted(v["name"] for v in repaired["spec"]["volumes"]) == sorted(v["name"] for v in whole["spec"]["volumes"])
    assert outcome.review["response"]["auditAnnotations"]["restored"].startswith("init container agent-init, sidecar proxy")
    assert all(len(w) < 120 for w in outcome.warnings)


def test_a_status_without_anything_missing_adds_nothing() -> None:
    outcome = reinvoked(injected({}))
    assert outcome.reason == "already-injected" and outcome.patched_pod is None


def test_a_restored_sidecar_brings_the_volumes_it_mounts_now() -> None:
    # The config gained a mount since injection: the sidecar comes back as injected now, and
    # the volume the status does not name comes with it (it named a volume the Pod lacked).
    pod = injected({})
    del pod["spec"]["initContainers"][0]
    data = yaml.safe_load(BASE_CONFIG.read_text())
    data["profiles"]["proxy"]["volumes"].append({"name": "proxy-certs", "secret": {"secretName": "certs"}})
    data["profiles"]["proxy"]["volumeMounts"]["proxy"].append({"name": "proxy-certs", "mountPath": "/certs"})
    config = parse_config(data, "test")
    outcome, repaired = repaired_pod(pod, config)
    assert outcome.warnings == ["sidecar proxy was removed by another webhook; added again",
                                "volume proxy-certs added: the restored proxy mounts it"]
    assert outcome.review["response"]["auditAnnotations"]["restored"] == "sidecar proxy, volume proxy-certs"
    assert pod_errors(repaired, LATEST_SCHEMA) == []
    assert json.loads(repaired["metadata"]["annotations"][STATUS])["volumes"][-1] == "proxy-certs"
    assert reinvoked(repaired, config).patched_pod is None
    assert uninject(repaired).pod["spec"] == {"containers": [{"name": "app", "image": "nginx:1.27"}]}


def test_a_status_that_names_a_sidecar_alone_gives_it_its_volumes() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "annotations": {STATUS: '{"containers":["proxy"],"native":true}'}},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
    outcome, repaired = repaired_pod(pod)
    assert outcome.reason == "repaired" and pod_errors(repaired, LATEST_SCHEMA) == []
    assert [v["name"] for v in repaired["spec"]["volumes"]] == ["proxy-config", "podinfo", "proxy-token"]
    status = json.loads(repaired["metadata"]["annotations"][STATUS])
    assert status["created"] == ["spec.initContainers", "spec.volumes"]
    assert uninject(repaired).pod == {**pod, "metadata": {"name": "web", "annotations": {}}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pods(), st.data())
def test_any_repaired_pod_is_one_the_api_server_accepts(pod: dict[str, Any], data: st.DataObject) -> None:
    """Whatever another webhook removed of ours, the repaired Pod passes the API server's rules,
    a further reinvocation adds nothing, and uninject gives the Pod as it was before injection."""
    assume(semantic_errors(pod) == [])
    original = copy.deepcopy(pod)
    outcome = review(pod_review(pod), CONFIG)
    assume(outcome.patched_pod is not None)
    whole = copy.deepcopy(outcome.patched_pod)
    status = json.loads(whole["metadata"]["annotations"][STATUS])
    sidecars = "initContainers" if status["native"] else "containers"
    pieces = [("initContainers", n) for n in status["initContainers"]] + [(sidecars, n) for n in status["containers"]]
    pieces += [("volumes", n) for n in status["volumes"]]
    assume(pieces)
    broken = copy.deepcopy(whole)
    for key, name in data.draw(st.lists(st.sampled_from(pieces), min_size=1, unique=True)):
        broken["spec"][key] = [item for item in broken["spec"][key] if item["name"] != name]
    outcome, repaired = repaired_pod(broken)
    assert outcome.reason == "repaired"
    assert pod_errors(repaired, LATEST_SCHEMA) == []
    assert all(len(w) < 120 for w in outcome.warnings)
    assert reinvoked(repaired).patched_pod is None
    assert uninject(repaired).pod == original


def test_a_sidecar_moved_to_the_other_list_is_reported_not_added_twice() -> None:
    pod = injected({})
    proxy = pod["spec"]["initContainers"].pop(0)
    pod["spec"]["containers"].append({k: v for k, v in proxy.items() if k != "restartPolicy"})
    outcome = reinvoked(pod)
    assert outcome.patched_pod is None and "sidecar proxy was moved by another webhook; left as it is" in outcome.warnings
    assert outcome.review["response"]["auditAnnotations"]["changed"] == "sidecar proxy"


CANONICAL = {"0.5Gi": "512Mi", "1000m": "1", "1e3": "1k", "0.25": "250m", "2048Ki": "2Mi"}


def as_the_api_server_returns_it(pod: dict[str, Any]) -> dict[str, Any]:
    """The injected Pod as a reinvocation carries it: the API server's defaults filled in, its
    quantities written canonical, and the service-account token mounted into every container,
    the sidecar too (the ServiceAccount admission plugin runs again after a webhook mutated the
    Pod: seen on a real 1.20 API server), which is what it does between two webhooks and what
    kubectl get shows."""
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    spec.setdefault("volumes", []).append({"name": "default-token-x1", "secret": {"secretName": "default-token-x1"}})
    for container in spec.get("initContainers", []) + spec["containers"]:
        container.setdefault("volumeMounts", []).append(
            {"name": "default-token-x1", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
             "readOnly": True})
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        for probe in (container.get(k) for k in ("readinessProbe", "livenessProbe", "startupProbe")):
            if probe is not None:
                for key, value in (("timeoutSeconds", 1), ("successThreshold", 1), ("failureThreshold", 3),
                                   ("periodSeconds", 10)):
                    probe.setdefault(key, value)
                if "httpGet" in probe:
                    probe["httpGet"].setdefault("scheme", "HTTP")
        for var in container.get("env", []):
            if "fieldRef" in var.get("valueFrom", {}):
                var["valueFrom"]["fieldRef"].setdefault("apiVersion", "v1")
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for name, value in resources.get(kind, {}).items():
                resources[kind][name] = CANONICAL.get(value, value)
        if "limits" in resources:
            resources["requests"] = {**resources["limits"], **resources.get("requests", {})}
    for volume in spec.get("volumes", []):
        for source in ("configMap", "downwardAPI", "projected", "secret"):
            if source in volume:
                volume[source].setdefault("defaultMode", 420)
        for item in volume.get("downwardAPI", {}).get("items", []):
            item["fieldRef"].setdefault("apiVersion", "v1")
        if "sizeLimit" in volume.get("emptyDir", {}):
            volume["emptyDir"]["sizeLimit"] = CANONICAL.get(volume["emptyDir"]["sizeLimit"], volume["emptyDir"]["sizeLimit"])
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    return pod


def test_the_api_servers_defaults_and_canonical_quantities_are_no_change() -> None:
    # 0.5Gi comes back as 512Mi and 1000m as 1: compared as text, every such Pod was "changed".
    annotations = {"sidecar-injector.io/proxy.memory-limit": "0.5Gi", "sidecar-injector.io/proxy.cpu-limit": "1000m",
                   "sidecar-injector.io/profiles": "proxy,agent,logging"}
    for extra in ({}, {"sidecar-injector.io/native-sidecar": "false"}):
        pod = as_the_api_server_returns_it(injected({**annotations, **extra}))
        outcome = reinvoked(pod)
        assert outcome.reason == "already-injected" and outcome.patched_pod is None
        assert outcome.warnings == []  # a reinvocation (every injected Pod's): nothing for kubectl to show
        assert "changed" not in outcome.review["response"]["auditAnnotations"]
        assert uninject(pod).warnings == []


def test_a_sidecar_another_webhook_changed_is_reported_and_left() -> None:
    pod = as_the_api_server_returns_it(injected({"sidecar-injector.io/profiles": "proxy,agent"}))
    proxy = next(c for c in pod["spec"]["initContainers"] if c["name"] == "proxy")
    proxy["image"] = "docker.io/istio/proxyv2:1.24.0"
    agent_data = next(v for v in pod["spec"]["volumes"] if v["name"] == "agent-data")
    agent_data["emptyDir"]["medium"] = "Memory"  # more fields: still ours
    outcome = reinvoked(pod)
    assert outcome.patched_pod is None and outcome.reason == "already-injected"
    assert outcome.warnings == ["sidecar proxy was changed by another webhook; left as it is"]
    assert outcome.review["response"]["auditAnnotations"]["changed"] == "sidecar proxy"
    proxy["image"] = "envoyproxy/envoy:v1.31.2"
    proxy["resources"]["requests"]["memory"] = "65Mi"  # a value, not its spelling
    assert reinvoked(pod).review["response"]["auditAnnotations"]["changed"] == "sidecar proxy"
    pod["spec"]["volumes"][0] = {**pod["spec"]["volumes"][0], "configMap": {"name": "theirs"}}
    assert reinvoked(pod).review["response"]["auditAnnotations"]["changed"] == "sidecar proxy, volume proxy-config"


def test_a_reinvocation_with_nothing_missing_injects_nothing_anew(monkeypatch: Any) -> None:
    """The fresh injection is computed only when a recorded name is missing or a comparison needs
    it (the status's config hash is this config's), and then kept per settings and Pod shape."""
    import webhook.repair as repair_module

    calls: list[int] = []
    real_inject = repair_module.inject
    monkeypatch.setattr(repair_module, "inject", lambda *args, **kwargs: calls.append(1) or real_inject(*args, **kwargs))
    config = load_config_file(BASE_CONFIG)  # a memo of its own
    pod = as_the_api_server_returns_it(injected({"sidecar-injector.io/profiles": "proxy,agent"}))
    stale = copy.deepcopy(pod)
    status = json.loads(stale["metadata"]["annotations"][STATUS])
    stale["metadata"]["annotations"][STATUS] = json.dumps({**status, "configHash": "0" * 16})
    assert reinvoked(stale, config).patched_pod is None and calls == []  # nothing missing, nothing to compare
    for _ in range(3):
        assert reinvoked(copy.deepcopy(pod), config).patched_pod is None
    assert len(calls) == 1  # compared three times, injected anew once
    del stale["spec"]["initContainers"][-1]
    assert reinvoked(stale, config).reason == "repaired" and len(calls) == 1  # missing: the same shape's pieces
    stale["spec"]["volumes"].append({"name": "mine", "emptyDir": {}})
    assert reinvoked(stale, config).reason == "repaired" and len(calls) == 2  # another shape: injected anew
