"""Fuzzing: hostile AdmissionReviews, Pods and raw bytes against the running TLS server and the core.

Hypothesis builds reviews that are mostly plausible and then corrupts them: fields deleted, set
to null or to a value of the wrong type, huge strings, deep nesting, unicode everywhere, the
webhook's own annotations with odd values. What must hold for every input:

* the server answers 2xx with a well-formed review echoing the uid, or 4xx with a JSON
  ``{"error": ...}`` body; never 5xx, never a crash or a hang (same process, /healthz after);
* every patch applies (jsonpatch, RFC 6902), and a Pod the API server would accept
  (``k8s_checks.semantic_errors``) stays acceptable once patched.

Examples are bounded so the file runs well under a minute.
"""

from __future__ import annotations

import base64
import copy
import json
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jsonpatch
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook import annotations as ann
from webhook.config import load_config_file
from webhook.errors import ReviewError
from webhook.mutate import parse_request, review
from webhook.server.answers import answer

from conftest import GOLDEN_CONFIG, Server, ssl_context_from, start_server
from k8s_checks import semantic_errors

CONFIG = load_config_file(GOLDEN_CONFIG)
API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
SERVER_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- strategies ---------------------------------------------------------------------------------


def mostly(valid: Any, others: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``valid`` four times in five, else one of ``others`` (Hypothesis leans to the first choices
    of sampled_from, which would make the odd values common)."""
    return st.integers(0, 4).flatmap(lambda n: st.just(valid) if n < 4 else others)


odd_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "\u2028", "\u202e", "é", "😀" * 8, "\\", '"', "${jndi}", "../..", "a\nb"]),
)
huge_text = st.builds(lambda piece, count: piece * count, st.sampled_from(["a", "é", "😀", "\\n", "9"]),
                      st.sampled_from([5000, 70_000, 140_000]))
text = st.one_of(odd_text, odd_text, odd_text, huge_text)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), odd_text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(odd_text, inner, max_size=3)),
                           max_leaves=8)


@dataclass(frozen=True)
class Deep:
    """Nesting too deep for json.dumps to write; ``encode`` expands it in the JSON text."""

    depth: int


deep = st.builds(Deep, st.sampled_from([40, 300, 900, 1023, 1100]))
anything = st.one_of(json_values, json_values, json_values, text, deep)

names = st.sampled_from(["app", "web", "proxy", "log-shipper", "agent", "podinfo", "App", "", "a" * 64])
annotation_keys = st.sampled_from([*sorted(ann.KNOWN), ann.PREFIX + "drain-second", ann.PREFIX, "example.com/x"])
annotation_values = st.one_of(
    st.sampled_from(["true", "false", "", "0", "5", "-1", "3601", "1e3", "proxy", "logging,agent", "proxy,proxy",
                     "nope", " proxy ", "9" * 5000]),
    odd_text,
)


@st.composite
def containers(draw: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": draw(names), "image": draw(st.sampled_from(["nginx:1.27", "", "x" * 300]))}
    if draw(st.booleans()):
        container["ports"] = [{"containerPort": draw(st.integers(-1, 70000)), "name": draw(odd_text)}]
    if draw(st.booleans()):
        container["volumeMounts"] = [{"name": draw(names), "mountPath": draw(st.sampled_from(["/data", "/etc/podinfo",
                                                                                               "", "relative"]))}]
    if draw(st.booleans()):
        container["env"] = [{"name": draw(st.sampled_from(["POD_NAME", "A", ""])), "value": draw(odd_text)}]
    return container


@st.composite
def pods(draw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": draw(st.lists(containers(), min_size=1, max_size=4))}
    if draw(st.booleans()):
        spec["initContainers"] = draw(st.lists(containers(), max_size=2))
    if draw(st.booleans()):
        spec["volumes"] = [{"name": draw(names), "emptyDir": {}}]
    for key, values in (("restartPolicy", st.sampled_from(["Always", "Never", "OnFailure", "Sometimes"])),
                        ("hostNetwork", st.booleans()),
                        ("terminationGracePeriodSeconds", st.integers(-5, 10**6))):
        if draw(st.booleans()):
            spec[key] = draw(values)
    metadata: dict[str, Any] = {"generateName": "web-", "labels": {"app": "web"},
                                "annotations": draw(st.dictionaries(annotation_keys, annotation_values, max_size=4))}
    if draw(st.booleans()):
        metadata["ownerReferences"] = [{"kind": draw(st.sampled_from(["ReplicaSet", "Job", "StatefulSet"])),
                                        "name": "owner", "apiVersion": "apps/v1", "uid": "u"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into nested dicts and lists (the root included)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


@st.composite
def corrupted(draw: Any, value: Any, max_changes: int = 3) -> Any:
    """``value`` with a few fields deleted, nulled or replaced by anything at all."""
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(0, max_changes))):
        path = draw(st.sampled_from([p for p in _paths(value) if p]))
        *parents, last = path
        parent = value
        for key in parents:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "null", "replace", "replace"]))
        if action == "delete":
            del parent[last]
        else:
            parent[last] = None if action == "null" else draw(anything)
    return value


# Sizes around the thresholds: inline vs pooled review (256 KiB) and the body limit (3 MiB).
padding = st.sampled_from([200_000, 300_000, 1_600_000])  # x1-2 bytes per character


@st.composite
def hostile_pods(draw: Any) -> Any:
    """A plausible Pod, then corrupted; sometimes padded past the pooled-review or body-size limits."""
    pod = draw(corrupted(draw(pods()), max_changes=draw(st.sampled_from([0, 1, 2, 4]))))
    meta = pod.get("metadata") if isinstance(pod, dict) else None
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    if isinstance(notes, dict) and draw(st.integers(0, 7)) == 7:
        notes["example.com/pad"] = draw(st.sampled_from(["a", "é", "\n"])) * draw(padding)
    return pod


@st.composite
def reviews(draw: Any) -> dict[str, Any]:
    pod = draw(hostile_pods())
    request: dict[str, Any] = {
        "uid": draw(mostly("", odd_text)) or str(draw(st.uuids())),
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": draw(st.sampled_from(["shop", "default", "", "kube-system"])),
        "operation": draw(mostly("CREATE", st.sampled_from(["UPDATE", "DELETE", "CONNECT", "create"]))),
        "userInfo": draw(st.one_of(
            st.just({"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "groups": ["system:serviceaccounts"]}),
            st.fixed_dictionaries({"username": odd_text, "groups": st.lists(odd_text, max_size=3)}),
        )),
        "object": pod,
        "oldObject": None,
        "dryRun": draw(st.booleans()),
    }
    subresource = draw(mostly(None, st.sampled_from(["status", "ephemeralcontainers", ""])))
    if subresource is not None:
        request["subResource"] = subresource
    envelope = {"apiVersion": draw(mostly(API_VERSIONS[0], st.sampled_from([API_VERSIONS[1], "v1", ""]))),
                "kind": draw(mostly("AdmissionReview", st.sampled_from(["Pod", "admissionreview"]))),
                "request": request}
    return draw(corrupted(envelope, max_changes=draw(st.sampled_from([0, 0, 0, 0, 1, 2]))))


def encode(value: Any) -> bytes:
    """JSON text, with every Deep expanded (through a placeholder no generated text can forge)."""
    nonce = uuid.uuid4().hex
    depths: set[int] = set()

    def placeholder(item: Any) -> str:
        assert isinstance(item, Deep)
        depths.add(item.depth)
        return f"{nonce}:{item.depth}"

    text = json.dumps(value, default=placeholder)
    for depth in depths:
        text = text.replace(f'"{nonce}:{depth}"', '{"a":' * depth + "1" + "}" * depth)
    return text.encode()


def decoded(body: bytes) -> Any:
    """What the server parsed (orjson reads the deep nesting Python's json cannot), or None."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


# --- what every answer must be -----------------------------------------------------------------------


def accepted_by_api_server(pod: Any) -> bool:
    try:
        return isinstance(pod, dict) and not semantic_errors(pod)
    except Exception:  # the checker itself may trip on garbage: then it is not a valid Pod
        return False


def check_patch(response: dict[str, Any], sent: Any) -> None:
    if "patch" not in response:
        return
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    pod = sent["request"]["object"]
    valid_before = accepted_by_api_server(pod)
    patched = jsonpatch.apply_patch(pod, ops, in_place=True)  # no deepcopy: the Pod may nest 1000 deep
    if valid_before:
        assert semantic_errors(patched) == [], "a valid Pod became invalid once patched"


def check_reply(sent: Any, status: int, body: bytes) -> None:
    """``sent``: the review as the server parsed it (None if it could not)."""
    assert status < 500, body[:500]
    data = json.loads(body)
    if status >= 300:
        assert 400 <= status < 500 and isinstance(data["error"], str), (status, data)
        return
    assert data["kind"] == "AdmissionReview"
    assert data["apiVersion"] == sent["apiVersion"]
    response = data["response"]
    assert response["uid"] == sent["request"]["uid"]
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        assert isinstance(response["status"]["message"], str)
    for warning in response.get("warnings", []):
        assert isinstance(warning, str) and len(warning) < 120 and warning.isprintable()
    check_patch(response, sent)


# --- against the running server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of our own: fuzzed names and megabyte values land in its log, not the shared one's."""
    running = start_server(tmp_path_factory.mktemp("fuzz"), config=GOLDEN_CONFIG)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, verify=ssl_context_from(server.ca_file), timeout=15) as client:
        yield client


@SERVER_SETTINGS
@given(sent=reviews())
def test_server_answers_any_review(client: httpx.Client, sent: dict[str, Any]) -> None:
    body = encode(sent)
    response = client.post("/mutate", content=body, headers={"Content-Type": "application/json"})
    check_reply(decoded(body), response.status_code, response.content)


garbage = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda tail: b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":' + tail,
              st.binary(max_size=200)),
    st.builds(lambda value: json.dumps(value).encode(), json_values),
)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(body=garbage, method=st.sampled_from(["POST", "POST", "POST", "PUT", "GET", "DELETE"]),
       content_type=st.sampled_from(["application/json", "application/json", "application/json; charset=utf-8",
                                     "text/plain", "", "application/JSON", "application/json-patch+json"]))
def test_server_answers_any_bytes(client: httpx.Client, body: bytes, method: str, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.request(method, "/mutate", content=body, headers=headers)
    check_reply(decoded(body), response.status_code, response.content)


request_lines = st.builds(
    lambda method, target, version, headers, tail: method + b" " + target + b" " + version + b"\r\n" + headers + tail,
    st.sampled_from([b"GET", b"POST", b"BREW", b"", b"G\x00T"]),
    st.one_of(st.sampled_from([b"/healthz", b"/mutate", b"*", b"/%zz", b"//" + b"a" * 3000]), st.binary(max_size=30)),
    st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9", b""]),
    st.lists(st.binary(max_size=40).map(lambda b: b + b"\r\n"), max_size=3).map(b"".join),
    st.sampled_from([b"\r\n", b"Content-Length: -1\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"]),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(raw=request_lines)
def test_server_answers_any_request_head(server: Server, raw: bytes) -> None:
    """Whole requests of random bytes over TLS: an answer (never 5xx) or a close, never a hang."""
    context = ssl_context_from(server.ca_file)
    with (socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock,
          context.wrap_socket(sock, server_hostname="127.0.0.1") as tls):
        tls.sendall(raw)
        tls.settimeout(0.5)
        answer = b""
        try:
            while chunk := tls.recv(65536):
                answer += chunk
        except TimeoutError:
            pass  # a head that is still incomplete waits for more bytes; that is not a hang
        except (ConnectionError, ssl.SSLError):
            pass
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert status < 500, answer[:300]


# --- in-process, more examples -----------------------------------------------------------------------


@settings(max_examples=600, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sent=reviews())
def test_review_answers_any_review(sent: dict[str, Any]) -> None:
    raw = encode(sent)
    server, whole = answer(raw, CONFIG), _whole_answer(raw)  # the server decodes only what it reads
    if not (whole.reason == "malformed-json" and "depth limit exceeded" in (whole.error or "")):
        assert (server.status, server.reason, server.body) == (whole.status, whole.reason, whole.body)
    # else: valid JSON nested deeper than orjson parses, in fields the review never reads: the
    # projection skips them and answers; no Kubernetes object nests so
    body = decoded(raw)
    if body is None:
        return  # the server's 400, tested above
    try:
        snapshot: bytes | None = orjson.dumps(body)
    except orjson.JSONEncodeError:  # nests deeper than orjson writes (255)
        snapshot = None
    try:
        outcome = review(body, CONFIG)
    except ReviewError:
        return  # a malformed request: 400
    if snapshot is not None:
        assert orjson.dumps(body) == snapshot, "review changed its input"
    assert outcome.decision in ("injected", "skipped", "denied", "error")
    check_reply(body, 200, orjson.dumps(outcome.review))


def _whole_answer(raw: bytes) -> Any:
    """The server's answer with the body parsed whole (before webhook.server.review_decode)."""
    from unittest import mock

    with mock.patch("webhook.server.answers.decode_review", lambda raw: None):
        return answer(raw, CONFIG)


# --- found by fuzzing ---------------------------------------------------------------------------------


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_deeply_nested_envelope_value_is_a_400(client: httpx.Client) -> None:
    """A 1000-deep apiVersion once made the server answer 500: the core formatted the bad value
    with repr, which recursed too deep. Now the message names only its type."""
    review_ = {"apiVersion": Deep(1000), "kind": "AdmissionReview",
               "request": {"uid": "u-deep", "kind": {"group": "", "version": "v1", "kind": "Pod"}}}
    response = client.post("/mutate", content=encode(review_), headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "apiVersion must be one of admission.k8s.io/v1, admission.k8s.io/v1beta1, "
                                        "got a dict"}


def test_deeply_nested_envelope_value_is_a_review_error() -> None:
    with pytest.raises(ReviewError):
        parse_request({"apiVersion": nested(1000), "kind": "AdmissionReview", "request": {"uid": "u"}})


def test_messages_do_not_echo_unbounded_request_values() -> None:
    with pytest.raises(ReviewError) as error:
        parse_request({"apiVersion": "a" * 100_000, "kind": "AdmissionReview", "request": {"uid": "u"}})
    assert len(str(error.value)) < 1000
    request = {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
               "namespace": "shop", "userInfo": {"username": "u" * 100_000},
               "object": {"metadata": {}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}}
    strict = CONFIG.model_copy(update={"requesters": CONFIG.requesters.model_copy(
        update={"enabled": True, "onMismatch": "deny"})})
    outcome = review({"apiVersion": API_VERSIONS[0], "kind": "AdmissionReview", "request": request}, strict)
    assert outcome.decision == "denied"
    assert len(outcome.review["response"]["status"]["message"]) < 1000


# --- last: after all of it -----------------------------------------------------------------------------


def test_server_survived_everything(server: Server) -> None:
    """The same process, never restarted, still healthy, and it still stops cleanly."""
    assert server.process.poll() is None, server.log()[-3000:]
    with httpx.Client(base_url=server.url, verify=ssl_context_from(server.ca_file), timeout=5) as fresh:
        assert fresh.get("/healthz").status_code == 200
    # Split on "\n" only: fuzzed strings put U+2028 and the like into (valid) JSON lines.
    serving = [line for line in server.log().split("\n") if '"msg":"serving"' in line]
    assert len(serving) == 1 and f'"pid":{server.process.pid},' in serving[0]
    assert not [line for line in server.log().split("\n") if '"level":"error"' in line]
    assert server.stop() == 0
