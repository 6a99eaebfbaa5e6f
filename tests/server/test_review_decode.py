"""webhook/review_decode.py: the server decodes only what the review reads, and answers alike.

That the answers are the same as from the whole body is checked where the bodies are: every
golden case (test_golden), every corpus Pod (test_corpus) and generated Pods (test_properties)
go through ``engine_support.server_answer_differs``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.config import load_config_file, override
from webhook.server.answers import answer
from webhook.server.review_decode import decode_review

from engine_support import BASE_CONFIG, case_names, load_review

CONFIG = load_config_file(BASE_CONFIG)
# Every profile also builds probes and a warm-up startupProbe: the reads of ports and handlers.
WARMUP_CONFIG = override(CONFIG, "profiles", {
    name: {**profile.model_dump(exclude_none=True), "probes": {"enabled": True}, "warmupSeconds": 60}
    for name, profile in CONFIG.profiles.items()}, "test")


def test_only_the_fields_the_review_reads_are_built() -> None:
    review = load_review("pod-basic")
    pod = review["request"]["object"]
    pod["metadata"]["managedFields"] = [{"manager": "kubectl", "time": "2026-11-27T08:00:00Z"}]
    pod["spec"]["containers"][0]["image"] = "nginx:1.27"
    pod["spec"]["affinity"] = {"nodeAffinity": {}}
    decoded = decode_review(orjson.dumps(review))
    assert decoded is not None
    assert "managedFields" not in decoded["request"]["object"]["metadata"]
    assert "affinity" not in decoded["request"]["object"]["spec"]
    assert "image" not in decoded["request"]["object"]["spec"]["containers"][0]
    assert decoded["request"]["uid"] == review["request"]["uid"]
    assert set(decoded["request"]["kind"]) <= {"group", "kind"}
    assert decoded["request"]["object"]["metadata"]["labels"] == pod["metadata"].get("labels", decoded[
        "request"]["object"]["metadata"].get("labels"))


def test_inside_objects_only_what_is_read_is_built() -> None:
    review = load_review("pod-basic")
    review["request"]["userInfo"] = {"username": "system:serviceaccount:kube-system:replicaset-controller",
                                     "uid": "u-1", "groups": ["system:serviceaccounts"], "extra": {"a": ["b"]}}
    review["request"]["object"]["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-6b7f9c8d4", "uid": "r-1", "controller": True,
         "blockOwnerDeletion": True}]
    spec = review["request"]["object"]["spec"]
    spec["volumes"] = [{"name": "data", "configMap": {"name": "settings", "items": [{"key": "a", "path": "a"}]}}]
    spec["containers"][0].update(
        env=[{"name": "MODE", "value": "fast"}],
        ports=[{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        volumeMounts=[{"name": "data", "mountPath": "/data", "readOnly": True}],
        lifecycle={"postStart": {"exec": {"command": ["true"]}}, "preStop": {"sleep": {"seconds": 5}}},
        livenessProbe={"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
    )
    decoded = decode_review(orjson.dumps(review))
    assert decoded is not None
    assert decoded["request"]["userInfo"] == {"username": "system:serviceaccount:kube-system:replicaset-controller",
                                              "groups": ["system:serviceaccounts"]}
    # The controller's identity, for Events; not blockOwnerDeletion.
    assert decoded["request"]["object"]["metadata"]["ownerReferences"] == [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-6b7f9c8d4", "uid": "r-1", "controller": True}]
    spec = decoded["request"]["object"]["spec"]
    assert spec["volumes"] == [{"name": "data"}]
    assert spec["containers"][0] == {
        "name": review["request"]["object"]["spec"]["containers"][0]["name"],
        "env": [{}],  # only that each is an object (the shape check)
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "volumeMounts": [{"mountPath": "/data"}],
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},  # the handler a startupProbe copies
    }


@pytest.mark.parametrize(("raw", "status", "reason"), [
    (b'{"apiVersion": "admission.k8s.io/v1"', 400, "malformed-json"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": "x"}', 400, "invalid-review"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "kind": '
     b'{"kind": "Pod"}, "operation": "CREATE", "object": [1]}}', 400, "invalid-review"),
    (b'{"request": {"object": {"spec": {"containers": ["app"]}}}}', 400, "invalid-review"),
    (orjson.dumps({**load_review("pod-basic"), "request": {**load_review("pod-basic")["request"], "object": {
        "spec": {"containers": [{"name": "app", "env": ["MODE=fast"]}]}}}}), 200, "malformed-pod"),
    (b'{"x": "\xff\xfe", "kind": "AdmissionReview"}', 400, "malformed-json"),  # invalid UTF-8 where unread
    (b'{"kind": "\xff\xfe"}', 400, "malformed-json"),  # ... and where read
    (b'{"x": "a\x01b", "kind": "AdmissionReview"}', 400, "malformed-json"),  # a raw control character
])
def test_what_the_types_cannot_hold_is_parsed_whole_and_answered_as_before(raw: bytes, status: int,
                                                                            reason: str) -> None:
    assert decode_review(raw) is None
    reply = answer(raw, CONFIG)
    assert (reply.status, reply.reason) == (status, reason)


def test_a_number_beyond_64_bits_where_the_review_does_not_look_changes_nothing() -> None:
    """JSON allows it and the API server never sends one."""
    review: dict[str, Any] = load_review("pod-basic")
    text = json.dumps(review).replace('"metadata": {', '"metadata": {"x": 123456789012345678901234567890, ', 1)
    assert orjson.dumps(decode_review(text.encode())) == orjson.dumps(decode_review(json.dumps(review).encode()))
    assert answer(text.encode(), CONFIG).body == answer(json.dumps(review).encode(), CONFIG).body


def _reads_numbers(review: dict[str, Any], where: str, value: Any) -> bytes:
    pod = review["request"]["object"]
    container = pod["spec"]["containers"][0]
    if where == "grace":
        pod["spec"]["terminationGracePeriodSeconds"] = value
    elif where == "containerPort":
        container["ports"] = [{"containerPort": value}]
    elif where == "probe handler":
        container["livenessProbe"] = {"tcpSocket": {"port": value}}
    elif where == "request.kind.kind":
        review["request"]["kind"]["kind"] = value
    elif where == "owner kind":
        pod["metadata"]["ownerReferences"] = [{"kind": value}]
    elif where == "username":
        review["request"]["userInfo"] = {"username": value}
    return json.dumps(review).encode()


@pytest.mark.parametrize("value", [10**30, 2**64 - 1, 2**63, -(2**64)])
@pytest.mark.parametrize("where", ["grace", "containerPort", "probe handler", "request.kind.kind", "owner kind",
                                   "username"])
def test_a_number_beyond_64_bits_the_review_reads_is_answered_as_the_whole_parse_answers_it(
        where: str, value: int) -> None:
    """JSON allows it and the API server never sends one; orjson reads it as a float, msgspec
    exactly. Where the review reads it, the answer must not depend on which of them decoded."""
    for config in (CONFIG, WARMUP_CONFIG):
        raw = _reads_numbers(load_review("pod-basic"), where, value)
        projected, whole = answer(raw, config), _whole(raw, config)
        assert (projected.status, projected.reason, projected.body) == (whole.status, whole.reason, whole.body)
        assert projected.reason != "internal-error"


def test_a_body_nested_deeply_is_answered_never_with_a_500() -> None:
    """msgspec gives up at Python's recursion limit, orjson at 1024 levels: at the default limit
    such a body is parsed whole and refused (400); where a test runner raised the limit, the
    projection holds it and the review answers it (here: not a Pod). Never a 500."""
    for raw in (b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}",
                b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", '
                b'"userInfo": ' + b"[" * 5000 + b"]" * 5000 + b"}}"):
        reply = answer(raw, CONFIG)
        assert reply.status in (200, 400), reply.reason
        if decode_review(raw) is None:
            assert (reply.status, reply.reason) == (400, "malformed-json")


def test_valid_utf8_beyond_ascii_is_decoded() -> None:
    review: dict[str, Any] = load_review("pod-basic")
    review["request"]["object"]["metadata"]["annotations"] = {"note": "café ☕"}
    raw = json.dumps(review, ensure_ascii=False).encode()
    decoded = decode_review(raw)
    assert decoded is not None and decoded["request"]["object"]["metadata"]["annotations"] == {"note": "café ☕"}


def _whole(raw: bytes, config: Any = CONFIG) -> Any:
    """The answer with the body parsed whole (the path before webhook.server.review_decode)."""
    from unittest import mock

    with mock.patch("webhook.server.answers.decode_review", lambda raw: None):
        return answer(raw, config)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(case=st.sampled_from(case_names()), at=st.integers(0, 10**6), byte=st.integers(0, 255))
def test_a_corrupted_byte_is_answered_as_the_whole_parse_answers_it(case: str, at: int, byte: int) -> None:
    """One byte of a real review changed anywhere (inside a string, a key, the structure): the
    server's answer is the one the whole parse gives, and never an exception."""
    raw = bytearray(orjson.dumps(load_review(case)))
    raw[at % len(raw)] = byte
    reply, whole = answer(bytes(raw), CONFIG), _whole(bytes(raw))
    assert (reply.status, reply.reason, reply.body) == (whole.status, whole.reason, whole.body)



def test_a_body_naming_our_status_is_parsed_whole_and_answered_alike() -> None:
    """A reinvocation (our status annotation) is parsed whole at once, without the projection's
    decode; where the key is only text elsewhere (a label) the whole parse answers as well."""
    reinvoked = load_review("reinvoked-nothing-missing")
    assert decode_review(orjson.dumps(reinvoked)) is None
    plain = load_review("pod-basic")
    plain["request"]["object"]["metadata"]["labels"] = {"sidecar-injector.io/status": "a label, not ours"}
    raw = orjson.dumps(plain)
    assert decode_review(raw) is None
    from webhook.mutate import review

    assert answer(raw, CONFIG).body == orjson.dumps(review(plain, CONFIG).review)
