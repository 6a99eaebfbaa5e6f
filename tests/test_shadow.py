"""Shadow mode (webhook/shadow.py): a profile in shadow mode is decided in full and patched not at
all; the audit annotation says what it would add or the denial it would give, no warning reaches
the user, and a Pod that also selects normal profiles is injected with those alone."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from webhook.config import load_config_file, parse_config
from webhook.mutate import review

from engine_support import BASE_CONFIG, decoded_patch, pod_review, server_answer_differs
from k8s_checks import semantic_errors
from test_properties import pods

BASE = load_config_file(BASE_CONFIG)


def in_shadow(*names: str) -> Any:
    data = BASE.model_dump(exclude_none=True)
    for name in names:
        data["profiles"][name]["mode"] = "shadow"
    return parse_config(data, "test")


SHADOW_ALL = in_shadow(*BASE.profiles)
SHADOW_PROXY = in_shadow("proxy")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pods())
def test_shadow_profiles_are_decided_in_full_and_patched_not_at_all(pod: dict[str, Any]) -> None:
    assume(semantic_errors(pod) == [])
    normal = review(pod_review(copy.deepcopy(pod)), BASE)
    body = pod_review(pod)
    shadow = review(body, SHADOW_ALL)
    assert not server_answer_differs(body, SHADOW_ALL, shadow)
    response = shadow.review["response"]
    assert response["allowed"] is True and "patch" not in response
    if normal.decision in ("injected", "denied") or normal.reason == "nothing-to-add":
        assert shadow.decision == "shadow" and response.get("warnings") is None
        text = response["auditAnnotations"]["shadow"]
        assert ("would deny" in text) == (normal.decision == "denied")
        assert ("would add nothing" in text) == (normal.reason == "nothing-to-add")
        if normal.decision == "injected":
            for name in normal.review["response"]["auditAnnotations"]["containers"].split(","):
                assert name == "none" or name in text
    else:  # skipped for a reason of its own (opted out, hostNetwork...): as before
        assert (shadow.decision, shadow.reason) == (normal.decision, normal.reason)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pods())
def test_a_shadow_profile_beside_normal_ones_changes_nothing_they_inject(pod: dict[str, Any]) -> None:
    assume(semantic_errors(pod) == [])
    annotations = pod["metadata"].get("annotations") or {}
    profiles = [p for p in annotations.get("sidecar-injector.io/profiles", "proxy").split(",") if p]
    assume(profiles and "proxy" in profiles and len(set(profiles)) > 1)
    without = copy.deepcopy(pod)
    without["metadata"]["annotations"]["sidecar-injector.io/profiles"] = ",".join(p for p in profiles if p != "proxy")
    expected = review(pod_review(without), BASE)
    actual = review(pod_review(pod), SHADOW_PROXY)
    assume(expected.decision == "injected")
    assert actual.decision == "injected"
    assert actual.patched_pod["spec"] == expected.patched_pod["spec"]
    assert "shadow" in actual.review["response"]["auditAnnotations"]


A = "sidecar-injector.io/"
NEWPROXY = {"containers": [{"name": "np", "image": "corp/np:1"}], "mode": "shadow"}


def _data(defaults: list[str], version: str) -> dict[str, Any]:
    data = BASE.model_dump(exclude_none=True)
    data["profiles"]["agent"]["runToCompletion"] = "inject"  # a normal profile a Job Pod keeps on 1.28
    data["defaultProfiles"] = [name for name in defaults if name != "newproxy"]
    data["kubernetesVersion"] = version
    return data


def with_newproxy(defaults: list[str], version: str = "1.30", **newproxy: Any) -> Any:
    data = _data(defaults, version)
    data["profiles"]["newproxy"] = {**NEWPROXY, **newproxy}
    data["defaultProfiles"] = defaults
    return parse_config(data, "test")


def without_newproxy(defaults: list[str], version: str = "1.30") -> Any:
    return parse_config(_data(defaults, version), "test")


def plain_pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "annotations": annotations or {}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}}


def answered(outcome: Any, config: Any) -> bytes:
    """The response as the user sees it (the shadow audit annotation aside; the config hash
    differs between the two configs by design)."""
    response = copy.deepcopy(outcome.review["response"])
    response.get("auditAnnotations", {}).pop("shadow", None)
    response["patch"] = decoded_patch(outcome)
    return json.dumps(response, sort_keys=True).replace(config.config_hash, "HASH").encode()


def same_as_without(pod: dict[str, Any], with_config: Any, without_config: Any,
                    without_pod: dict[str, Any] | None = None) -> Any:
    body = pod_review(pod)
    actual = review(body, with_config)
    assert not server_answer_differs(body, with_config, actual)
    expected = review(pod_review(without_pod or pod), without_config)
    assert (actual.decision, actual.reason, actual.warnings) == (expected.decision, expected.reason, expected.warnings)
    assert answered(actual, with_config) == answered(expected, without_config)
    return actual


def test_a_shadow_profile_that_would_deny_a_job_pod_does_not_deny_it_beside_a_normal_one() -> None:
    # runToCompletion: deny of a shadow profile refused Job Pods on Kubernetes < 1.29.
    job = plain_pod(restartPolicy="Never")
    config = with_newproxy(["agent", "newproxy"], "1.28", runToCompletion="deny")
    actual = same_as_without(job, config, without_newproxy(["agent"], "1.28"))
    assert actual.decision == "injected"
    assert actual.review["response"]["auditAnnotations"]["shadow"].startswith(
        "profiles newproxy would deny the Pod: profile newproxy is required (runToCompletion: deny)")


def test_a_shadow_profile_runtocompletion_leaves_out_is_said_in_the_audit_not_to_the_user() -> None:
    job = plain_pod(restartPolicy="Never")
    data = {"runToCompletion": "skip"}
    actual = same_as_without(job, with_newproxy(["agent", "newproxy"], "1.28", **data), without_newproxy(["agent"], "1.28"))
    assert not any("newproxy" in warning for warning in actual.warnings)
    assert actual.review["response"]["auditAnnotations"]["shadow"] == (
        "profiles newproxy would add nothing; newproxy left out: "
        "a legacy sidecar would keep this run-to-completion Pod running")


def test_a_shadow_default_profile_the_namespace_may_not_use_gives_no_warning() -> None:
    config = with_newproxy(["proxy", "newproxy"], namespaces={"allow": ["staging"]})
    actual = same_as_without(plain_pod(), config, without_newproxy(["proxy"]))
    assert actual.warnings == []
    assert actual.review["response"]["auditAnnotations"]["shadow"] == (
        "profiles newproxy would add nothing; newproxy left out: not allowed in namespace shop")


def test_a_named_shadow_profile_the_namespace_may_not_use_is_no_denial_beside_a_normal_one() -> None:
    config = with_newproxy(["proxy"], namespaces={"allow": ["staging"]})
    actual = same_as_without(plain_pod({A + "profiles": "proxy,newproxy"}), config, without_newproxy(["proxy"]),
                             plain_pod({A + "profiles": "proxy"}))
    assert actual.decision == "injected"
    assert actual.review["response"]["auditAnnotations"]["shadow"] == (
        "profiles newproxy would deny the Pod: profile newproxy may not be used in namespace shop")


def test_an_override_of_a_shadow_profiles_container_is_its_business() -> None:
    config = with_newproxy(["proxy", "newproxy"])
    actual = same_as_without(plain_pod({A + "np.image": "x/y:1"}), config, without_newproxy(["proxy"]), plain_pod())
    assert actual.decision == "injected"
    assert actual.review["response"]["auditAnnotations"]["shadow"] == (
        f"profiles newproxy would deny the Pod: annotation {A}np.image='x/y:1' is not allowed: "
        "profile newproxy allows no image override")
    # an override no selected profile's container takes is still a denial, naming the normal ones only
    denied = review(pod_review(plain_pod({A + "nope.image": "x/y:1"})), config)
    assert denied.decision == "denied" and "profiles proxy inject no container nope (they inject: proxy)" in denied.message


def test_a_pod_whose_profiles_are_all_in_shadow_gets_no_warning_about_them() -> None:
    # Left out by runToCompletion or the namespace: "not injected" warnings told the user.
    for config, pod in ((with_newproxy(["newproxy"], "1.28"), plain_pod(restartPolicy="Never")),
                        (with_newproxy(["newproxy"], namespaces={"allow": ["staging"]}), plain_pod())):
        outcome = review(pod_review(pod), config)
        assert (outcome.decision, outcome.warnings) == ("shadow", [])
        assert outcome.review["response"]["auditAnnotations"]["shadow"].startswith(
            "profiles newproxy would not inject the Pod: ")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pods(), st.sampled_from(["skip", "inject", "deny"]), st.sampled_from([[], ["staging"], ["shop"]]),
       st.sampled_from(["1.28", "1.30"]), st.booleans())
def test_beside_normal_profiles_a_shadow_profile_changes_nothing_the_user_sees(
        pod: dict[str, Any], run_to_completion: str, allow: list[str], version: str, override: bool) -> None:
    """Whatever the shadow profile's settings, the Pod is answered exactly as without it."""
    assume(semantic_errors(pod) == [])
    config = with_newproxy(["proxy", "newproxy"], version, runToCompletion=run_to_completion,
                           namespaces={"allow": allow})
    annotations = pod["metadata"].setdefault("annotations", {"team": "shop"})
    without = copy.deepcopy(pod)
    if A + "profiles" in annotations:
        annotations[A + "profiles"] += ",newproxy"
    if override:
        annotations[A + "np.image"] = "corp/np:2"
    same_as_without(pod, config, without_newproxy(["proxy", "newproxy"], version), without)
