"""Property tests: for any valid Pod and any valid annotations, injection is sound.

Hypothesis builds Pods the API server would accept (names, mounts and ports drawn from
small alphabets, so they collide with the sidecars' often) and checks what must hold for
every one of them: the patch applies (jsonpatch's RFC 6902 implementation is the oracle),
writes only where injection may, keeps all user data, is idempotent, and yields a Pod the
API server accepts.

jsonpatch.make_patch is not used as an oracle for the ops themselves: this very test found
it emitting a `move` between list items that applies to a different document than the
target (a known upstream weakness), which is one more reason we build ops ourselves.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from webhook.config import load_config_file
from webhook.mutate import review

from engine_support import (
    BASE_CONFIG,
    apply,
    decoded_patch,
    lost_user_data,
    op_paths_allowed,
    pod_review,
    server_answer_differs,
)
from k8s_checks import LATEST_SCHEMA, pod_errors, semantic_errors

CONFIG = load_config_file(BASE_CONFIG)
A = "sidecar-injector.io/"

names = st.sampled_from(["app", "web", "proxy", "worker", "log-shipper", "agent", "main"])
volume_names = st.sampled_from(["data", "cache", "podinfo", "app-logs", "proxy-config", "tmp"])
paths = st.sampled_from(["/data", "/cache", "/etc/podinfo", "/var/log/app", "/tmp", "/etc/envoy"])
ports = st.integers(min_value=1, max_value=65535)
handlers = st.one_of(
    st.builds(lambda p: {"tcpSocket": {"port": p}}, ports),
    st.builds(lambda p: {"httpGet": {"path": "/healthz", "port": p}}, ports),
    st.just({"exec": {"command": ["true"]}}),
)
probes = st.builds(lambda h, period: {**h, "periodSeconds": period}, handlers, st.integers(1, 30))
hooks = st.one_of(st.just({"exec": {"command": ["sh", "-c", "sleep 1"]}}), st.just({"sleep": {"seconds": 3}}))


@st.composite
def containers(draw: Any, volumes: list[str], name: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": "example.com/app:1"}
    if draw(st.booleans()):
        container["ports"] = [{"containerPort": draw(ports), "protocol": draw(st.sampled_from(["TCP", "UDP"]))}]
    if volumes and draw(st.booleans()):
        chosen = draw(st.lists(st.tuples(st.sampled_from(volumes), paths), max_size=3, unique_by=lambda t: t[1]))
        container["volumeMounts"] = [{"name": v, "mountPath": p} for v, p in chosen]
    if draw(st.booleans()):
        container["env"] = [{"name": draw(st.sampled_from(["POD_NAME", "MODE", "JAVA_OPTS"])), "value": "x"}]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if draw(st.booleans()):
            container[probe] = draw(probes)
    lifecycle = {}
    for hook in ("preStop", "postStart"):
        if draw(st.booleans()):
            lifecycle[hook] = draw(hooks)
    if lifecycle:
        container["lifecycle"] = lifecycle
    return container


@st.composite
def pods(draw: Any) -> dict[str, Any]:
    volumes = draw(st.lists(volume_names, max_size=3, unique=True))
    container_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    init_names = draw(st.lists(names.filter(lambda n: n not in container_names), max_size=2, unique=True))
    spec: dict[str, Any] = {
        "containers": [draw(containers(volumes, n)) for n in container_names],
        "volumes": [{"name": v, "emptyDir": {}} for v in volumes],
    }
    if init_names:
        spec["initContainers"] = [{"name": n, "image": "busybox:1.36"} for n in init_names]
        if draw(st.booleans()):
            spec["initContainers"][0]["restartPolicy"] = "Always"
    for key, strategy in (
        ("hostPID", st.booleans()),
        ("hostNetwork", st.booleans()),
        ("shareProcessNamespace", st.booleans()),
        ("terminationGracePeriodSeconds", st.integers(3, 120)),
        ("restartPolicy", st.sampled_from(["Always", "OnFailure", "Never"])),
    ):
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    if not spec["volumes"]:
        del spec["volumes"]
    annotations = draw(
        st.dictionaries(
            st.sampled_from([
                A + "profiles", A + "native-sidecar", A + "hold-application", A + "drain-seconds",
                A + "share-process-namespace", A + "podinfo", A + "probes", A + "warmup-seconds",
                A + "inject", A + "containers", "team/owner", "example.com/owner",
            ]),
            st.just(""),
            max_size=5,
        )
    )
    for key in annotations:
        annotations[key] = draw(_annotation_values(key))
    meta: dict[str, Any] = {"generateName": "pod-", "labels": {"app": "x"}}
    if annotations:
        meta["annotations"] = annotations
    if draw(st.booleans()):
        meta["ownerReferences"] = [
            {"apiVersion": "batch/v1", "kind": draw(st.sampled_from(["Job", "ReplicaSet"])), "name": "o", "uid": "u"}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _annotation_values(key: str) -> st.SearchStrategy[str]:
    if key.endswith("seconds"):
        return st.integers(0, 600).map(str)
    if key == A + "containers":
        return st.lists(names, min_size=1, max_size=2).map(",".join)
    if key == A + "profiles":
        return st.lists(st.sampled_from(sorted(CONFIG.profiles)), min_size=1, max_size=3).map(",".join)
    if key.startswith(A):
        return st.sampled_from(["true", "false", "TRUE"])
    return st.text(max_size=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pods(), st.uuids())
def test_injection_is_sound(pod: dict[str, Any], uid: Any) -> None:
    assume(semantic_errors(pod) == [])
    before = copy.deepcopy(pod)
    outcome = review(pod_review(pod, str(uid)), CONFIG)
    assert pod == before, "the input Pod was modified"
    assert outcome.review["response"]["uid"] == str(uid)
    assert review(pod_review(pod, str(uid)), CONFIG, fresh_copies=False).review == outcome.review
    assert not server_answer_differs(pod_review(pod, str(uid)), CONFIG, outcome)
    ops = decoded_patch(outcome)
    if ops is None:
        return
    patched = apply(pod, ops)
    assert patched == outcome.patched_pod
    assert op_paths_allowed(ops) == []
    assert list(lost_user_data(pod, patched)) == []
    assert semantic_errors(patched) == []

    again = review(pod_review(patched), CONFIG)
    assert again.patched_pod is None and again.reason == "already-injected"
    stripped = copy.deepcopy(patched)
    del stripped["metadata"]["annotations"][A + "status"]
    assert review(pod_review(stripped), CONFIG).patched_pod is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(pods())
def test_injected_pods_pass_the_schema(pod: dict[str, Any]) -> None:
    assume(semantic_errors(pod) == [])
    outcome = review(pod_review(pod), CONFIG)
    if outcome.patched_pod is not None:
        assert pod_errors(outcome.patched_pod, "1.30") + pod_errors(outcome.patched_pod, LATEST_SCHEMA) == []
