"""webhook/mutate.py: the AdmissionReview envelope, skips, warnings, and the onError answers."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

import jsonpatch
import pytest

import webhook.mutate as mutate
from webhook import annotations as ann
from webhook.config import Config, parse_config
from webhook.errors import ReviewError
from webhook.mutate import MAX_WARNING_CHARS, clip_warning, describe, on_error, parse_request, review

PROFILES = {
    "proxy": {
        "containers": [{"name": "proxy", "image": "example.com/proxy:1",
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 9901}, "periodSeconds": 1}}],
        "drainSeconds": 5,
        "podinfo": {"enabled": True},
    },
    "internal": {
        "containers": [{"name": "vault", "image": "example.com/vault:1"}],
        "namespaces": {"allow": ["platform"]},
    },
}


def make_config(**keys: Any) -> Config:
    return parse_config({"defaultProfiles": ["proxy"], "profiles": copy.deepcopy(PROFILES), **keys}, "test")


ALLOW = make_config()
DENY = make_config(onError="deny")


def make_pod(annotations: dict[str, str] | None = None, **metadata: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", **metadata}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}


def body(obj: Any = None, api_version: str = "admission.k8s.io/v1", **request: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "uid": "0000-uid",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "groups": ["system:serviceaccounts"]},
        "object": make_pod() if obj is None else obj,
    }
    req.update(request)
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": req}


def response(outcome: mutate.Outcome) -> dict[str, Any]:
    return outcome.review["response"]


def assert_envelope(outcome: mutate.Outcome, sent: dict[str, Any]) -> None:
    assert outcome.review["apiVersion"] == sent["apiVersion"]
    assert outcome.review["kind"] == "AdmissionReview"
    assert response(outcome)["uid"] == sent["request"]["uid"] == outcome.uid
    for warning in response(outcome).get("warnings", []):
        assert warning.isprintable() and len(warning) <= MAX_WARNING_CHARS
    audit = response(outcome).get("auditAnnotations", {})
    assert audit, "every answer carries audit annotations"
    for key, value in audit.items():
        assert isinstance(key, str) and re.fullmatch(r"[a-z][a-zA-Z0-9.-]*", key), key
        assert isinstance(value, str), (key, value)
    json.dumps(outcome.review)  # serialisable


def assert_no_patch(outcome: mutate.Outcome) -> None:
    assert "patch" not in response(outcome) and "patchType" not in response(outcome)
    assert outcome.patch is None and outcome.patched_pod is None


# --------------------------------------------------------------------------- the envelope


@pytest.mark.parametrize("sent", [None, [], "AdmissionReview", 5, [{"kind": "AdmissionReview"}]])
def test_body_must_be_an_object(sent: Any) -> None:
    with pytest.raises(ReviewError, match="the body must be a JSON object"):
        parse_request(sent)
    with pytest.raises(ReviewError):
        review(sent, ALLOW)


@pytest.mark.parametrize("api_version", [None, "admission.k8s.io/v2", "v1", "admission.k8s.io/V1", ""])
def test_wrong_api_version(api_version: Any) -> None:
    sent = body()
    if api_version is None:
        del sent["apiVersion"]
    else:
        sent["apiVersion"] = api_version
    with pytest.raises(ReviewError) as info:
        review(sent, ALLOW)
    assert "admission.k8s.io/v1, admission.k8s.io/v1beta1" in str(info.value)
    assert repr(api_version) in str(info.value)


@pytest.mark.parametrize("kind", [None, "AdmissionReviewList", "Pod", "admissionreview"])
def test_wrong_kind(kind: Any) -> None:
    sent = body()
    sent["kind"] = kind
    with pytest.raises(ReviewError, match=f"kind must be AdmissionReview, got {re.escape(repr(kind))}"):
        review(sent, ALLOW)


@pytest.mark.parametrize("request_value", ["missing", None, [], "x", 1])
def test_missing_request(request_value: Any) -> None:
    sent = body()
    if request_value == "missing":
        del sent["request"]
    else:
        sent["request"] = request_value
    with pytest.raises(ReviewError, match="request is missing or not an object"):
        review(sent, ALLOW)


@pytest.mark.parametrize("uid", ["missing", None, "", 5, ["u"], {"uid": "u"}])
def test_missing_or_bad_uid(uid: Any) -> None:
    sent = body()
    if uid == "missing":
        del sent["request"]["uid"]
    else:
        sent["request"]["uid"] = uid
    with pytest.raises(ReviewError, match="request.uid is missing or not a non-empty string"):
        review(sent, ALLOW)
    with pytest.raises(ReviewError):
        on_error(sent, ALLOW, "deadline", "too slow")


def test_parse_request_returns_version_and_request() -> None:
    sent = body(api_version="admission.k8s.io/v1beta1")
    api_version, request = parse_request(sent)
    assert api_version == "admission.k8s.io/v1beta1" and request is sent["request"]


def test_v1beta1_is_answered_as_v1beta1() -> None:
    sent = body(api_version="admission.k8s.io/v1beta1")
    outcome = review(sent, ALLOW)
    assert outcome.decision == "injected"
    assert_envelope(outcome, sent)


def test_the_review_is_not_modified() -> None:
    sent = body(make_pod({ann.PROFILES: "proxy"}))
    before = copy.deepcopy(sent)
    review(sent, ALLOW)
    assert sent == before


def test_object_that_is_not_a_pod_object_is_a_review_error() -> None:
    for obj in (["pod"], "pod", 5):
        sent = body()
        sent["request"]["object"] = obj
        with pytest.raises(ReviewError, match="request.object must be the Pod being created"):
            review(sent, ALLOW)
    sent = body()
    del sent["request"]["object"]
    with pytest.raises(ReviewError):
        review(sent, DENY)


# --------------------------------------------------------------------------- what is skipped


@pytest.mark.parametrize(
    "kind, message",
    [
        ({"group": "apps", "version": "v1", "kind": "Deployment"}, "apps/Deployment is not a core/v1 Pod"),
        ({"group": "", "version": "v1", "kind": "ConfigMap"}, "ConfigMap is not a core/v1 Pod"),
        ({"group": "example.com", "version": "v1", "kind": "Pod"}, None),
        ({"group": "metrics.k8s.io", "version": "v1beta1", "kind": "Pod"}, None),
        ({"version": "v1"}, "an unknown kind is not a core/v1 Pod"),
        ("Pod", "an unknown kind is not a core/v1 Pod"),
        (None, "an unknown kind is not a core/v1 Pod"),
    ],
)
def test_non_pods_are_allowed_without_a_patch(kind: Any, message: str | None) -> None:
    sent = body(kind=kind)
    outcome = review(sent, ALLOW)
    assert outcome.decision == "skipped" and outcome.reason == "not-a-pod"
    if message is None:  # a Pod kind of another API group (named with its group)
        message = outcome.message
        assert message.endswith("/Pod is not a core/v1 Pod")
    assert outcome.message == message
    assert response(outcome)["allowed"] is True
    assert response(outcome)["auditAnnotations"] == {"decision": "skipped", "reason": message}
    assert_no_patch(outcome)
    assert_envelope(outcome, sent)


def test_pod_kind_without_group_is_a_pod() -> None:
    outcome = review(body(kind={"version": "v1", "kind": "Pod"}), ALLOW)
    assert outcome.decision == "injected"


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE", "CONNECT", "create", None])
def test_only_create_is_injected(operation: Any) -> None:
    sent = body(operation=operation)
    if operation is None:
        del sent["request"]["operation"]
    if operation == "DELETE":
        sent["request"]["object"] = None
        sent["request"]["oldObject"] = make_pod()
    outcome = review(sent, DENY)
    assert outcome.reason == "not-create" and response(outcome)["allowed"] is True
    assert outcome.message == f"operation {operation or 'unknown'} is not CREATE"
    assert_no_patch(outcome)
    assert_envelope(outcome, sent)


@pytest.mark.parametrize("subresource", ["ephemeralcontainers", "status", "binding"])
def test_subresources_are_not_injected(subresource: str) -> None:
    sent = body(subResource=subresource)
    outcome = review(sent, ALLOW)
    assert outcome.reason == "subresource" and response(outcome)["allowed"] is True
    assert outcome.message == f"subresource {subresource} is not injected"
    assert_no_patch(outcome)


def test_empty_subresource_is_the_pod_itself() -> None:
    assert review(body(subResource=""), ALLOW).decision == "injected"


def test_nothing_to_add_is_skipped() -> None:
    first = review(body(), ALLOW)
    pod = copy.deepcopy(first.patched_pod)
    del pod["metadata"]["annotations"][ann.STATUS]
    outcome = review(body(pod), ALLOW)
    assert outcome.reason == "nothing-to-add" and outcome.decision == "skipped"
    assert_no_patch(outcome)


# --------------------------------------------------------------------------- injected answers


def test_injected_answer_carries_a_patch_that_applies() -> None:
    sent = body(make_pod({"example.com/owner": "a/b~c"}))
    outcome = review(sent, ALLOW)
    resp = response(outcome)
    assert resp["allowed"] is True and resp["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(resp["patch"]))
    assert ops == outcome.patch
    assert jsonpatch.apply_patch(sent["request"]["object"], ops, in_place=False) == outcome.patched_pod
    assert resp["auditAnnotations"] == {"decision": "injected", "profiles": "proxy", "containers": "proxy"}
    assert outcome.profiles == ("proxy",)
    assert (outcome.kind, outcome.namespace, outcome.name, outcome.operation) == ("Pod", "shop", "web", "CREATE")
    assert_envelope(outcome, sent)


def test_injected_without_new_containers_says_none() -> None:
    pod = make_pod()
    pod["spec"]["containers"].append({"name": "proxy", "image": "mine"})
    outcome = review(body(pod), ALLOW)
    assert outcome.decision == "injected"
    assert response(outcome)["auditAnnotations"]["containers"] == "none"


# --------------------------------------------------------------------------- denials


def test_annotation_denial() -> None:
    sent = body(make_pod({ann.DRAIN_SECONDS: "lots"}))
    outcome = review(sent, ALLOW)
    resp = response(outcome)
    assert resp["allowed"] is False and outcome.decision == "denied" and outcome.reason == "invalid-annotation"
    assert resp["status"]["code"] == 400 and resp["status"]["reason"] == "BadRequest"
    assert resp["status"]["status"] == "Failure" and ann.DRAIN_SECONDS in resp["status"]["message"]
    assert resp["auditAnnotations"] == {"decision": "denied", "reason": resp["status"]["message"]}
    assert_no_patch(outcome)
    assert_envelope(outcome, sent)


def test_a_single_denial_is_bounded_and_lists_a_bounded_number_of_names() -> None:
    # 5000 unknown target containers gave a 40 KB status message and audit reason.
    names = ",".join(f"c{i:05d}" for i in range(5000))
    pod = make_pod({ann.CONTAINERS: names})
    pod["spec"]["containers"] = [{"name": f"app{i:02d}", "image": "nginx:1.27"} for i in range(40)]
    outcome = review(body(pod), ALLOW)
    message = response(outcome)["status"]["message"]
    assert outcome.reason == "invalid-annotation" and len(message) <= 1000
    assert response(outcome)["auditAnnotations"]["reason"] == message and outcome.problems == (message,)
    assert "the Pod has no container c00000, c00001, c00002, c00003, c00004, c00005, c00006, c00007, c00008, " \
           "c00009 and 4990 more; its containers: app00, app01, app02, app03, app04, app05, app06, app07, app08, " \
           "app09 and 30 more" in message


def test_every_denial_message_is_clipped() -> None:
    from webhook.errors import AnnotationError, Denied, ProfileNotAllowed

    for error in (AnnotationError("k", "v", "x" * 5000), ProfileNotAllowed("y" * 5000), Denied("z\n" * 3000)):
        assert len(str(error)) <= 1000 and str(error).isprintable() and str(error).endswith("...")


def test_profile_namespace_denial_is_forbidden() -> None:
    outcome = review(body(make_pod({ann.PROFILES: "internal"})), ALLOW)
    assert response(outcome)["status"]["code"] == 403 and response(outcome)["status"]["reason"] == "Forbidden"
    assert outcome.reason == "profile-not-allowed"


def test_requester_checked_when_user_info_is_missing() -> None:
    config = make_config(requesters={"enabled": True, "onMismatch": "deny"})
    sent = body()
    del sent["request"]["userInfo"]
    outcome = review(sent, config)
    assert outcome.reason == "requester-not-allowed" and response(outcome)["status"]["code"] == 403
    sent["request"]["userInfo"] = {"username": "alice", "groups": "system:masters"}  # groups not a list: ignored
    assert review(sent, config).reason == "requester-not-allowed"
    sent["request"]["userInfo"] = {"username": "alice", "groups": ["system:masters"]}
    assert review(sent, config).decision == "injected"


# --------------------------------------------------------------------------- warnings


def test_clip_warning_short_text_unchanged() -> None:
    assert clip_warning("volume x not added") == "volume x not added"
    assert clip_warning("é ünïcode ok") == "é ünïcode ok"


def test_clip_warning_replaces_unprintable_characters() -> None:
    assert clip_warning("a\nb\tc\x00d\u200be") == "a b c d e"


@pytest.mark.parametrize("length", [119, 120, 121, 500])
def test_clip_warning_bounds_the_length(length: int) -> None:
    clipped = clip_warning("x" * length)
    assert len(clipped) <= MAX_WARNING_CHARS and clipped.isprintable()
    if length > MAX_WARNING_CHARS:
        assert clipped.endswith("...")


@pytest.mark.parametrize("length", [120, 500])
def test_clip_warning_is_under_120_characters(length: int) -> None:
    assert len(clip_warning("x" * length)) < 120


def test_long_and_unprintable_warnings_are_clipped_in_the_answer() -> None:
    typo = ann.PREFIX + "drain\tsecond-" + "x" * 150
    outcome = review(body(make_pod({typo: "5"})), ALLOW)
    warnings = response(outcome)["warnings"]
    assert warnings and all(w.isprintable() and len(w) <= MAX_WARNING_CHARS for w in warnings)
    assert warnings[0].startswith(f"unknown annotation {ann.PREFIX}drain second-xxx") and warnings[0].endswith("...")
    assert outcome.warnings == warnings


def test_skip_warnings_are_clipped_too() -> None:
    pod = make_pod({ann.PREFIX + "y" * 200: "1"})
    pod["spec"]["hostNetwork"] = True
    outcome = review(body(pod), ALLOW)
    assert outcome.reason == "host-network"
    assert all(len(w) <= MAX_WARNING_CHARS for w in response(outcome)["warnings"])


# --------------------------------------------------------------------------- describe()


@pytest.mark.parametrize(
    "request_part, expected",
    [
        ({"object": make_pod(), "namespace": "shop"}, ("Pod", "shop", "web", "CREATE")),
        ({"object": {"metadata": {"generateName": "web-7d9f-"}}, "namespace": "shop"},
         ("Pod", "shop", "web-7d9f-*", "CREATE")),
        ({"object": {"metadata": {"name": "", "generateName": "job-"}}}, ("Pod", "", "job-*", "CREATE")),
        ({"object": {"metadata": {"namespace": "meta-ns"}}, "name": "from-request"},
         ("Pod", "meta-ns", "from-request", "CREATE")),
        ({"object": {"metadata": {"namespace": "meta-ns", "name": "n"}}, "namespace": "req-ns"},
         ("Pod", "req-ns", "n", "CREATE")),
        ({"object": None, "oldObject": make_pod(), "name": "web", "namespace": "shop", "operation": "DELETE"},
         ("Pod", "shop", "web", "DELETE")),
        ({"object": {"metadata": "junk"}}, ("Pod", "", "", "CREATE")),
        ({"object": "junk"}, ("Pod", "", "", "CREATE")),
        ({"object": make_pod(), "kind": {"group": "apps", "kind": "Deployment"}}, ("apps/Deployment", "", "web", "CREATE")),
        ({"object": make_pod(), "kind": "Pod"}, ("", "", "web", "CREATE")),
        ({"object": make_pod(), "operation": None}, ("Pod", "", "web", "")),
    ],
)
def test_describe_fallbacks(request_part: dict[str, Any], expected: tuple[str, str, str, str]) -> None:
    request = {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE", **request_part}
    if request.get("operation") is None:
        del request["operation"]
    assert describe(request) == expected


def test_skipped_outcome_is_described() -> None:
    outcome = review(body({"metadata": {"generateName": "api-"}}, kind={"group": "", "kind": "Pod"},
                          operation="UPDATE"), ALLOW)
    assert (outcome.kind, outcome.namespace, outcome.name, outcome.operation) == ("Pod", "shop", "api-*", "UPDATE")


# --------------------------------------------------------------------------- onError


def test_on_error_allow() -> None:
    sent = body()
    outcome = on_error(sent, ALLOW, "deadline-exceeded", "the review took longer than 2s")
    resp = response(outcome)
    assert resp["allowed"] is True and "status" not in resp
    assert resp["warnings"] == ["sidecar not injected: the review took longer than 2s"]
    assert resp["auditAnnotations"] == {"decision": "error", "reason": "the review took longer than 2s"}
    assert outcome.decision == "error" and outcome.reason == "deadline-exceeded"
    assert outcome.warnings == resp["warnings"]
    assert (outcome.kind, outcome.namespace, outcome.name, outcome.operation) == ("Pod", "shop", "web", "CREATE")
    assert_no_patch(outcome)
    assert_envelope(outcome, sent)


def test_on_error_deny() -> None:
    sent = body(api_version="admission.k8s.io/v1beta1")
    outcome = on_error(sent, DENY, "deadline-exceeded", "too slow")
    resp = response(outcome)
    assert resp["allowed"] is False and "warnings" not in resp
    assert resp["status"] == {"status": "Failure", "code": 500, "reason": "InternalError",
                              "message": "sidecar not injected: too slow"}
    assert resp["auditAnnotations"] == {"decision": "error", "reason": "too slow"}
    assert outcome.decision == "error" and outcome.warnings == []
    assert_no_patch(outcome)
    assert_envelope(outcome, sent)


def test_on_error_warning_is_clipped() -> None:
    outcome = on_error(body(), ALLOW, "x", "y" * 300)
    assert len(response(outcome)["warnings"][0]) <= MAX_WARNING_CHARS


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("secret internal detail")


@pytest.mark.parametrize("target", ["inject", "owner_kinds", "decide"])
def test_internal_error_is_answered_by_on_error_allow(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    # Fault injection: a bug that valid input cannot otherwise produce.
    monkeypatch.setattr(mutate, target, _explode)
    sent = body()
    outcome = review(sent, ALLOW)
    resp = response(outcome)
    assert outcome.decision == "error" and outcome.reason == "internal-error"
    assert resp["allowed"] is True
    assert resp["warnings"] == ["sidecar not injected: internal error (RuntimeError)"]
    assert "secret internal detail" not in json.dumps(outcome.review)  # no internals leak to users
    assert_no_patch(outcome)
    assert_envelope(outcome, sent)


def test_internal_error_is_answered_by_on_error_deny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mutate, "inject", _explode)
    outcome = review(body(), DENY)
    resp = response(outcome)
    assert resp["allowed"] is False and resp["status"]["code"] == 500
    assert resp["status"]["message"] == "sidecar not injected: internal error (RuntimeError)"
    assert outcome.reason == "internal-error"


def test_review_errors_are_still_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def bad_request(*args: Any, **kwargs: Any) -> Any:
        raise ReviewError("malformed")

    monkeypatch.setattr(mutate, "inject", bad_request)
    with pytest.raises(ReviewError, match="malformed"):
        review(body(), DENY)


def test_recursion_errors_are_still_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def deep(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(mutate, "decide", deep)
    with pytest.raises(RecursionError):
        review(body(), ALLOW)


@pytest.mark.parametrize("config, allowed", [(make_config(limits={"maxPatchBytes": 1024}), True),
                                             (make_config(limits={"maxPatchBytes": 1024}, onError="deny"), False)])
def test_patch_too_large(config: Config, allowed: bool) -> None:
    full = review(body(), ALLOW)
    size = len(json.dumps(full.patch, separators=(",", ":")))
    assert size > 1024, "the test needs a patch over the smallest limit"
    outcome = review(body(), config)
    resp = response(outcome)
    assert outcome.decision == "error" and outcome.reason == "patch-too-large"
    assert resp["allowed"] is allowed
    assert re.fullmatch(r"the patch would be \d+ bytes, over the limit of 1024", resp["auditAnnotations"]["reason"])
    assert_no_patch(outcome)


def test_patch_just_under_the_limit_is_sent() -> None:
    full = review(body(), ALLOW)
    size = len(base64.b64decode(response(full)["patch"]))
    outcome = review(body(), make_config(limits={"maxPatchBytes": size}))
    assert outcome.decision == "injected"
    outcome = review(body(), make_config(limits={"maxPatchBytes": size - 1}))
    assert outcome.reason == "patch-too-large"


def test_too_many_containers_is_answered_by_on_error() -> None:
    pod = make_pod()
    pod["spec"]["containers"].append({"name": "web", "image": "x"})
    outcome = review(body(pod), make_config(limits={"maxContainers": 1}, onError="deny"))
    assert outcome.reason == "too-many-containers" and response(outcome)["allowed"] is False
    assert response(outcome)["status"]["code"] == 500


def test_huge_seconds_annotation_is_not_an_internal_error() -> None:
    """README: an annotation value it cannot read is denied (see test_annotations for the root cause)."""
    outcome = review(body(make_pod({ann.DRAIN_SECONDS: "1" * 100})), ALLOW)
    assert outcome.decision == "denied" and outcome.reason == "invalid-annotation"


def test_very_long_seconds_annotation_is_denied() -> None:
    outcome = review(body(make_pod({ann.WARMUP_SECONDS: "9" * 5000})), ALLOW)
    assert outcome.decision == "denied" and outcome.reason == "invalid-annotation"


def test_audit_annotations_are_strings_for_every_kind_of_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = [
        (body(), ALLOW),  # injected
        (body(make_pod({ann.INJECT: "false"})), ALLOW),  # skipped
        (body(make_pod({ann.PODINFO: "perhaps"})), ALLOW),  # denied
        (body(kind={"group": "apps", "kind": "Deployment"}), ALLOW),  # not a Pod
        (body(), make_config(limits={"maxPatchBytes": 1024})),  # error, allow
        (body(), make_config(limits={"maxPatchBytes": 1024}, onError="deny")),  # error, deny
    ]
    decisions = set()
    for sent, config in bodies:
        outcome = review(sent, config)
        assert_envelope(outcome, sent)
        decisions.add(outcome.decision)
    assert decisions == {"injected", "skipped", "denied", "error"}
