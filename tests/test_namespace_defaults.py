"""A namespace's annotations as defaults for its Pods: Pod, then namespace, then profile."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhook.mutate import review
from webhook.namespace_defaults import defaults_of

from engine_support import case_config, pod_review

CONFIG = case_config("pod-basic")


def _pod(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "labels": {"app": "web"}}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 8080}]}]}}


def _answer(pod: dict[str, Any], namespace: dict[str, str] | None, pending: bool = False) -> Any:
    lookups: list[str] = []

    def lookup(name: str) -> tuple[dict[str, str] | None, bool]:
        lookups.append(name)
        return namespace, pending

    outcome = review(pod_review(pod, namespace="shop"), CONFIG, namespaces=lookup)
    assert lookups == ["shop"]
    return outcome


def _app(outcome: Any) -> dict[str, Any]:
    return next(c for c in outcome.patched_pod["spec"]["containers"] if c["name"] == "app")


def test_a_namespace_default_applies_where_the_pod_sets_nothing() -> None:
    outcome = _answer(_pod(), {"sidecar-injector.io/drain-seconds": "17", "other.io/x": "y"})
    assert outcome.decision == "injected"
    assert _app(outcome)["lifecycle"]["preStop"]["sleep"]["seconds"] == 17


def test_the_pods_own_annotation_wins_over_the_namespace() -> None:
    outcome = _answer(_pod({"sidecar-injector.io/drain-seconds": "3"}), {"sidecar-injector.io/drain-seconds": "17"})
    assert _app(outcome)["lifecycle"]["preStop"]["sleep"]["seconds"] == 3


def test_without_namespace_annotations_the_profile_decides() -> None:
    plain = review(pod_review(_pod(), namespace="shop"), CONFIG)
    assert _answer(_pod(), {}).review == plain.review
    assert _answer(_pod(), None).review == plain.review


def test_a_namespace_profile_default() -> None:
    outcome = _answer(_pod(), {"sidecar-injector.io/profiles": "logging"})
    assert outcome.profiles == ("logging",)


def test_an_invalid_namespace_value_denies_a_pod_relying_on_it_naming_the_namespace() -> None:
    namespace = {"sidecar-injector.io/drain-seconds": "abc"}
    outcome = _answer(_pod(), namespace)
    assert outcome.decision == "denied" and outcome.reason == "invalid-namespace-annotation"
    message = outcome.review["response"]["status"]["message"]
    assert message == ("namespace shop annotation sidecar-injector.io/drain-seconds='abc' is invalid: "
                       "allowed values are whole seconds from 0 to 3600")
    # A Pod with a value of its own does not rely on it.
    assert _answer(_pod({"sidecar-injector.io/drain-seconds": "3"}), namespace).decision == "injected"


def test_the_inject_switch_and_target_containers_are_not_namespace_defaults() -> None:
    assert defaults_of({"sidecar-injector.io/inject": "false", "sidecar-injector.io/containers": "app",
                        "sidecar-injector.io/status": "{}", "sidecar-injector.io/probes": "true",
                        "sidecar-injector.io/proxy.image": "x"}) == {
        "sidecar-injector.io/probes": "true", "sidecar-injector.io/proxy.image": "x"}
    outcome = _answer(_pod(), {"sidecar-injector.io/inject": "false"})
    assert outcome.decision == "injected"


def test_a_namespace_override_still_needs_the_profiles_permission() -> None:
    outcome = _answer(_pod(), {"sidecar-injector.io/proxy.image": "attacker.example/shell:1"})
    assert outcome.decision == "denied"
    assert "sidecar-injector.io/proxy.image" in outcome.review["response"]["status"]["message"]


def test_until_the_namespaces_are_loaded_the_profiles_apply_and_a_warning_says_so() -> None:
    outcome = _answer(_pod(), None, pending=True)
    assert outcome.decision == "injected"
    assert "namespace defaults are not loaded yet: the profiles' settings apply" in outcome.warnings


@pytest.mark.parametrize("value", ["true", "false"])
def test_boolean_namespace_defaults(value: str) -> None:
    outcome = _answer(_pod(), {"sidecar-injector.io/podinfo": value})
    status = json.loads(outcome.patched_pod["metadata"]["annotations"]["sidecar-injector.io/status"])
    assert ("podinfo" in status["volumes"]) is (value == "true")
