"""Shadow mode (webhook/shadow.py): a profile in shadow mode is decided in full and patched not at
all; the audit annotation says what it would add or the denial it would give, no warning reaches
the user, and a Pod that also selects normal profiles is injected with those alone."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, assume, given, settings

from webhook.config import load_config_file, parse_config
from webhook.mutate import review

from engine_support import BASE_CONFIG, pod_review, server_answer_differs
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
