"""webhook/sidecar_overrides.py: per-container overrides by annotation, as far as the profile allows.

Property: for any mix of override annotations, the Pod is either denied, with a message naming
every refused annotation with its value, or injected with exactly those values in the sidecar,
its request <= limit <= the profile's maximum, and the patched Pod passes the API server's rules.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.config import OverridePolicy, Profile, load_config_file, parse_config
from webhook.mutate import review
from webhook.quantity import parse
from webhook.sidecar_overrides import check

from engine_support import BASE_CONFIG, apply, decoded_patch, pod_review
from k8s_checks import pod_errors

CONFIG = load_config_file(BASE_CONFIG)
A = "sidecar-injector.io/"
MAX = {"cpu": parse("2"), "memory": parse("1Gi")}


def pod(annotations: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}


def sidecar(outcome: Any) -> dict[str, Any]:
    return next(c for c in outcome.patched_pod["spec"]["initContainers"] if c["name"] == "proxy")


quantities = st.one_of(
    st.sampled_from(["100m", "250m", "1", "1500m", "2", "3", "64Mi", "512Mi", "1Gi", "2Gi", "1.5.5", "-1", "1e", "Mi",
                     "1e3Mi", "1e2m", "1E3", "5e8", "1e-1"]),
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 3000), st.sampled_from(["m", "", "Mi", "Ki", "k", "G"])),
)
fields = {
    "proxy.cpu-request": quantities, "proxy.cpu-limit": quantities,
    "proxy.memory-request": quantities, "proxy.memory-limit": quantities,
    "proxy.image": st.sampled_from(["envoyproxy/envoy:v1.32.1", "envoyproxy/envoy:v1.30.0", "evil.example.com/x:1",
                                    "envoyproxy/envoy:v1.29.0", "envoyproxy/envoy:v1.3 "]),
    "proxy.env.LOG_LEVEL": st.sampled_from(["debug", "info", ""]),
    "proxy.env.HTTP_PROXY": st.just("http://proxy:3128"),
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(fields)), st.none(), min_size=1, max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({key: fields[key] for key in keys})))
def test_overrides_are_applied_within_the_profile_or_denied_by_name(chosen: dict[str, str]) -> None:
    annotations = {A + key: value for key, value in chosen.items()}
    outcome = review(pod_review(pod(annotations)), CONFIG)
    if outcome.decision == "denied":
        message = outcome.review["response"]["status"]["message"]
        assert len(message) <= 1000
        for problem in outcome.problems:
            assert problem.startswith("annotation " + A + "proxy.")
        named = [key for key, value in annotations.items() if f"{key}={value!r}" in message]
        assert named, message
        return
    assert outcome.decision == "injected", outcome.message
    container = sidecar(outcome)
    resources = container["resources"]
    for key, value in chosen.items():
        field = key.removeprefix("proxy.")
        if field == "image":
            assert container["image"] == value
        elif field.startswith("env."):
            assert {"name": field[4:], "value": value} in container["env"]
        else:
            resource, kind = field.split("-")
            assert resources[kind + "s"][resource] == value
    for resource in ("cpu", "memory"):
        request = resources.get("requests", {}).get(resource)
        limit = resources.get("limits", {}).get(resource)
        if limit is not None:
            assert parse(limit) <= MAX[resource] or f"proxy.{resource}-limit" not in chosen
            assert request is None or parse(request) <= parse(limit)
    patched = apply(pod(annotations), decoded_patch(outcome))
    assert pod_errors(patched, "1.30") == []


def test_a_profile_allows_nothing_by_default() -> None:
    outcome = review(pod_review(pod({A + "profiles": "agent", A + "agent.env.LOG_LEVEL": "debug"})), CONFIG)
    assert outcome.decision == "denied" and outcome.reason == "override-not-allowed"
    assert outcome.review["response"]["status"]["code"] == 403
    assert "profile agent allows no env override" in outcome.message


def test_an_override_is_not_an_unknown_annotation_but_a_typo_is() -> None:
    outcome = review(pod_review(pod({A + "proxy.env.LOG_LEVEL": "debug", A + "proxy.imag": "x"})), CONFIG)
    assert outcome.warnings == [f"unknown annotation {A}proxy.imag ignored (check its spelling)"]


def test_an_env_override_replaces_the_profiles_value_in_place() -> None:
    config = parse_config({"defaultProfiles": ["p"], "profiles": {"p": {
        "containers": [{"name": "agent", "image": "example.com/agent:1",
                        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "MODE", "value": "a"}]}],
        "overrides": {"env": ["LOG_*"]}}}}, "test")
    outcome = review(pod_review(pod({A + "agent.env.LOG_LEVEL": "debug"})), config)
    env = outcome.patched_pod["spec"]["initContainers"][0]["env"]
    assert env == [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "MODE", "value": "a"}]
    assert config.profiles["p"].containers[0]["env"][0]["value"] == "info"  # the config is not changed


@pytest.mark.parametrize("maximum", ["1.5.5", "-1", "Mi", "1e"])
def test_a_maximum_must_be_a_quantity(maximum: str) -> None:
    with pytest.raises(ValueError, match="overrides.resources.max.cpu"):
        parse_config({"profiles": {"p": {"overrides": {"resources": {"max": {"cpu": maximum}}}}}}, "test")


@pytest.mark.parametrize(("field", "value", "decision"), [
    ("memory-limit", "1e3Mi", "denied"), ("cpu-limit", "1e2m", "denied"), ("memory-limit", "2e0Ki", "denied"),
    ("cpu-limit", "1E0", "injected"), ("memory-limit", "1e8", "injected"), ("cpu-limit", "1.5", "injected"),
])
def test_a_quantity_the_api_server_refuses_is_denied_and_one_it_reads_is_injected(field: str, value: str,
                                                                                  decision: str) -> None:
    annotations = {A + "proxy." + field: value}
    outcome = review(pod_review(pod(annotations)), CONFIG)
    assert outcome.decision == decision, outcome.message
    if decision == "denied":
        assert outcome.message == (f"annotation {A}proxy.{field}={value!r} is invalid: a Kubernetes quantity of "
                                   "at least 0 such as 250m, 2, 512Mi or 1Gi")
    else:
        assert pod_errors(apply(pod(annotations), decoded_patch(outcome)), "1.30") == []


def two_proxies(secure: dict[str, Any], tuning: dict[str, Any]) -> Any:
    """Two profiles that both bring a container named proxy (names are unique within a profile only)."""
    return parse_config({"profiles": {
        "secure": {"containers": [{"name": "proxy", "image": "corp/mtls-proxy:1.0", **secure.pop("container", {})}],
                   "serviceAccountToken": {"audience": "mesh", "mountPath": "/var/run/secrets/mesh"}, **secure},
        "tuning": {"containers": [{"name": "proxy", "image": "corp/debug-proxy:1.0", **tuning.pop("container", {})}],
                   **tuning}}}, "test")


@pytest.mark.parametrize("order", ["secure,tuning", "tuning,secure"])
def test_an_override_must_be_allowed_by_every_profile_that_brings_the_container(order: str) -> None:
    # Checked against tuning alone, the image went into secure's proxy, with secure's mesh token.
    config = two_proxies({}, {"overrides": {"images": ["*"]}})
    outcome = review(pod_review(pod({A + "profiles": order, A + "proxy.image": "attacker/own-code:latest"})), config)
    assert (outcome.decision, outcome.reason) == ("denied", "override-not-allowed")
    assert outcome.message == (f"annotation {A}proxy.image='attacker/own-code:latest' is not allowed: "
                               "profile secure allows no image override")


def test_an_override_every_profile_allows_is_injected() -> None:
    config = two_proxies({"overrides": {"images": ["corp/*"], "resources": {"max": {"cpu": "1"}}}},
                         {"overrides": {"images": ["corp/debug-*"], "resources": {"max": {"cpu": "2"}}}})
    annotations = {A + "profiles": "secure,tuning", A + "proxy.image": "corp/debug-proxy:1.1"}
    outcome = review(pod_review(pod(annotations)), config)
    assert outcome.decision == "injected"
    assert sidecar(outcome)["image"] == "corp/debug-proxy:1.1"
    assert pod_errors(apply(pod(annotations), decoded_patch(outcome)), "1.30") == []
    over = review(pod_review(pod({**annotations, A + "proxy.cpu-limit": "1500m"})), config)
    assert over.message == f"annotation {A}proxy.cpu-limit='1500m' is not allowed: profile secure allows cpu up to 1"


@pytest.mark.parametrize("order", ["secure,tuning", "tuning,secure"])
def test_an_override_must_fit_every_profiles_container_of_that_name(order: str) -> None:
    config = two_proxies({"overrides": {"resources": {"max": {"cpu": "2"}}}},
                         {"overrides": {"resources": {"max": {"cpu": "2"}}},
                          "container": {"resources": {"requests": {"cpu": "1"}}}})
    outcome = review(pod_review(pod({A + "profiles": order, A + "proxy.cpu-limit": "500m"})), config)
    assert outcome.message == (f"annotation {A}proxy.cpu-limit='500m' is invalid: the cpu request of proxy must not "
                               "exceed its limit (1 > 0.5)")


def test_only_the_overridden_resources_are_compared() -> None:
    # A profile's own request above its own limit is refused at load; were one to get through,
    # an override of another resource is judged on its own (it was a KeyError).
    profile = Profile.model_construct(containers=[{"name": "proxy", "image": "i", "resources": {
        "requests": {"cpu": "500m"}, "limits": {"cpu": "100m"}}}], initContainers=[],
        overrides=OverridePolicy(resources={"max": {"memory": "1Gi"}}))
    assert check((("proxy", "memory-limit", "128Mi"),), (("p", profile),)) == []


DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("image", [f"envoyproxy/envoy:v1.3@{DIGEST}", f"envoyproxy/envoy:v1.31@{DIGEST}",
                                   f"envoyproxy/envoy:v1.3x@{DIGEST}"])
def test_a_digest_is_allowed_only_by_a_pattern_that_names_one(image: str) -> None:
    # envoyproxy/envoy:v1.3* matched "v1.3@sha256:<any>": a digest pins any image of the repository.
    outcome = review(pod_review(pod({A + "proxy.image": image})), CONFIG)
    assert (outcome.decision, outcome.reason) == ("denied", "override-not-allowed")
    assert outcome.message.endswith("profile proxy allows images envoyproxy/envoy:v1.3*; "
                                    "a digest only where a pattern has @")
    pinned = parse_config({"profiles": {"p": {"containers": [{"name": "proxy", "image": "envoyproxy/envoy:v1.31"}],
                                              "overrides": {"images": ["envoyproxy/envoy:v1.3*@sha256:*"]}}},
                           "defaultProfiles": ["p"]}, "test")
    assert review(pod_review(pod({A + "proxy.image": image})), pinned).decision == "injected"


@pytest.mark.parametrize("image", ["envoyproxy/envoy:v1.3\x00", "envoyproxy/envoy:v1.3\u200b", "envoyproxy/envoy:v1.3\t",
                                   "envoyproxy/envoy:v1.3\n", "envoyproxy/envoy:v1.3\u00e9", "envoyproxy/envoy:v1.3:x",
                                   "envoyproxy//envoy:v1.3", "envoyproxy/envoy:v1.3@sha256:short", ""])
def test_an_image_that_is_not_a_reference_is_invalid(image: str) -> None:
    outcome = review(pod_review(pod({A + "proxy.image": image})), CONFIG)
    assert (outcome.decision, outcome.reason) == ("denied", "invalid-annotation")
    assert outcome.review["response"]["status"]["code"] == 400
    assert "an image reference name[:tag][@digest]" in outcome.message and outcome.message.isprintable()


def test_override_values_are_bounded_and_a_longer_one_is_denied_naming_the_bound() -> None:
    wide = {"profiles": {"p": {"containers": [{"name": "proxy", "image": "envoyproxy/envoy:v1.31"}],
                               "overrides": {"images": ["*"], "env": ["*"]}}}, "defaultProfiles": ["p"]}
    config = parse_config(wide, "test")
    image = "registry.example.com/" + "a" * 300 + ":" + "t" * 128  # 450 characters: a reference still
    assert review(pod_review(pod({A + "proxy.image": image, A + "proxy.env.X": "v" * 4096})), config).decision == "injected"
    too_long = review(pod_review(pod({A + "proxy.image": image + "a" * 63, A + "proxy.env.X": "v" * 4097})), config)
    assert too_long.decision == "denied" and len(too_long.message) <= 1000
    assert too_long.problems == (f"annotation {A}proxy.env.X='{'v' * 57}...' is invalid: an env value of at most 4096 "
                                 "characters",
                                 f"annotation {A}proxy.image='registry.example.com/{'a' * 36}...' is invalid: an image "
                                 "reference of at most 512 characters")
