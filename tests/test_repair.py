"""webhook/repair.py: on reinvocation, what another webhook removed is added again where injection
had it; what it changed is reported and left; when nothing is missing nothing is added."""

from __future__ import annotations

import copy
from typing import Any

from webhook.config import load_config_file
from webhook.mutate import review

from engine_support import BASE_CONFIG, apply, decoded_patch, pod_review, server_answer_differs
from k8s_checks import LATEST_SCHEMA, pod_errors

CONFIG = load_config_file(BASE_CONFIG)


def injected(annotations: dict[str, str]) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "annotations": annotations},
           "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}
    outcome = review(pod_review(pod), CONFIG)
    assert outcome.patched_pod is not None
    return copy.deepcopy(outcome.patched_pod)


def reinvoked(pod: dict[str, Any]) -> Any:
    body = pod_review(pod)
    outcome = review(body, CONFIG)
    assert not server_answer_differs(body, CONFIG, outcome)
    return outcome


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
