"""webhook/uninject.py: uninject(inject(x)) == x for every golden case, every corpus Pod and
generated Pods; a Pod without our status is left as it is; what someone else changed is left
in place with a warning, and what is still ours is taken away."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings

from webhook.config import load_config_file
from webhook.mutate import review
from webhook.policy import PodContext, owner_kinds
from webhook.uninject import reinjected, uninject

from corpus import as_pod, corpus_workloads
from engine_support import BASE_CONFIG, case_config, case_names, load_review, pod_review
from k8s_checks import semantic_errors
from test_properties import pods

CONFIG = load_config_file(BASE_CONFIG)
WORKLOADS = corpus_workloads()
STATUS = "sidecar-injector.io/status"


def round_trip(pod: dict[str, Any], config: Any, namespace: str = "shop") -> dict[str, Any] | None:
    """Inject then uninject, with and without the reference; None when nothing was injected."""
    before = copy.deepcopy(pod)
    outcome = review(pod_review(pod, namespace=namespace), config)
    if outcome.patched_pod is None:
        return None
    patched = outcome.patched_pod
    plain = uninject(patched)
    assert plain.changed and plain.warnings == []
    assert plain.pod == before
    context = PodContext(namespace=namespace, owner_kinds=owner_kinds(patched))
    reference = reinjected(patched, context, config)
    assert reference == patched
    checked = uninject(patched, reference)
    assert checked.pod == before and checked.warnings == []
    return patched


@pytest.mark.parametrize("case", case_names())
def test_every_golden_case_round_trips(case: str) -> None:
    body = load_review(case)
    request = body["request"]
    if request.get("kind", {}).get("kind") != "Pod" or request.get("operation") != "CREATE":
        return
    if STATUS in (request["object"].get("metadata") or {}).get("annotations", {}):
        return  # a reinvocation: its Pod is an injected one (tests/test_repair.py)
    round_trip(request["object"], case_config(case), request.get("namespace", "shop"))


@pytest.mark.skipif(not WORKLOADS, reason="../shared/corpus not present")
@pytest.mark.parametrize(("ident", "workload", "ref"), WORKLOADS, ids=[w[0] for w in WORKLOADS])
def test_every_corpus_pod_round_trips(ident: str, workload: dict[str, Any], ref: Any) -> None:
    pod = as_pod(workload, ref)
    for extra in ({}, {"sidecar-injector.io/profiles": "agent,proxy,logging,jvm",
                       "sidecar-injector.io/share-process-namespace": "true"}):
        variant = copy.deepcopy(pod)
        if extra:
            variant.setdefault("metadata", {}).setdefault("annotations", {}).update(extra)
        round_trip(variant, CONFIG, ref.namespace or "corpus")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pods())
def test_generated_pods_round_trip(pod: dict[str, Any]) -> None:
    assume(semantic_errors(pod) == [])
    round_trip(pod, CONFIG)


def test_a_pod_without_our_status_is_left_as_it_is() -> None:
    pod = load_review("pod-basic")["request"]["object"]
    result = uninject(pod)
    assert not result.changed and result.pod == pod and result.warnings == []
    pod = {**pod, "metadata": {**pod["metadata"], "annotations": {STATUS: "{not json"}}}
    result = uninject(pod)
    assert not result.changed and result.pod == pod and result.warnings == [f"{STATUS} cannot be read; left as it is"]


def test_what_someone_else_changed_is_left_and_the_rest_taken_away() -> None:
    body = load_review("probes-jvm")
    original = body["request"]["object"]
    original["metadata"].setdefault("annotations", {})["sidecar-injector.io/profiles"] = "proxy,jvm"
    patched = copy.deepcopy(review(body, case_config("probes-jvm")).patched_pod)
    reference = reinjected(patched, PodContext(namespace="shop"), case_config("probes-jvm"))
    app = patched["spec"]["containers"][0]
    app["readinessProbe"]["periodSeconds"] = 99  # someone tuned our probe: theirs now
    app["lifecycle"]["preStop"]["sleep"]["seconds"] = 1
    patched["spec"]["initContainers"] = [c for c in patched["spec"]["initContainers"] if c["name"] != "proxy"]
    patched["spec"]["volumes"][0]["configMap"]["name"] = "mine"
    defaulted = patched["spec"]["containers"][0]
    defaulted["terminationMessagePath"] = "/dev/termination-log"  # an API server default changes nothing
    result = uninject(patched, reference)
    assert result.changed
    assert sorted(result.warnings) == sorted([
        "sidecar proxy was already removed",
        "volume proxy-config was changed since injection; left in place",
        "container orders: readinessProbe was changed since injection; left in place",
        "container orders: preStop hook was changed since injection; left in place",
    ])
    app = result.pod["spec"]["containers"][0]
    assert app["readinessProbe"]["periodSeconds"] == 99 and "livenessProbe" not in original["spec"]["containers"][0]
    assert "livenessProbe" not in app and "startupProbe" not in app  # still ours: taken away
    assert [v["name"] for v in result.pod["spec"]["volumes"]] == ["proxy-config"]
    assert STATUS not in result.pod["metadata"].get("annotations", {})


def test_a_volume_a_remaining_container_mounts_is_left_in_place() -> None:
    # The sidecar someone changed stays, and so must the volumes it mounts, or the Pod is invalid.
    from k8s_checks import pod_errors

    body = load_review("pod-basic")
    patched = copy.deepcopy(review(body, CONFIG).patched_pod)
    proxy = next(c for c in patched["spec"]["initContainers"] if c["name"] == "proxy")
    proxy["image"] = "docker.io/istio/proxyv2:1.24.0"
    reference = reinjected(patched, PodContext(namespace="shop"), CONFIG)
    result = uninject(patched, reference)
    assert result.warnings == ["sidecar proxy was changed since injection; left in place",
                               "volume proxy-config is still mounted by container proxy; left in place",
                               "volume podinfo is still mounted by container proxy; left in place",
                               "volume proxy-token is still mounted by container proxy; left in place"]
    assert [v["name"] for v in result.pod["spec"]["volumes"]] == ["proxy-config", "podinfo", "proxy-token"]
    assert pod_errors(result.pod) == []
    app = result.pod["spec"]["containers"][0]
    assert "/etc/podinfo" not in [m["mountPath"] for m in app.get("volumeMounts", [])]  # ours: taken away


def test_canonical_quantities_are_still_ours() -> None:
    pod = load_review("pod-basic")["request"]["object"]
    pod["metadata"].setdefault("annotations", {}).update({"sidecar-injector.io/proxy.memory-limit": "0.5Gi",
                                                          "sidecar-injector.io/proxy.cpu-limit": "1000m"})
    before = copy.deepcopy(pod)
    patched = copy.deepcopy(review(pod_review(pod), CONFIG).patched_pod)
    proxy = next(c for c in patched["spec"]["initContainers"] if c["name"] == "proxy")
    proxy["resources"]["limits"] = {"cpu": "1", "memory": "512Mi"}  # as the API server writes them back
    result = uninject(patched, reinjected(patched, PodContext(namespace="shop"), CONFIG))
    assert result.warnings == [] and result.pod == before
