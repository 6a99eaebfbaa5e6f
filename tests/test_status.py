"""The status annotation read back (webhook/uninject.py read_status): a record of another shape
(forged, garbled, or written by a tool that got it wrong) is unreadable as a whole. The Pod is
still already injected (the annotation is there), repair and uninject leave it as it is and say
so, and nothing raises: an internal error was a 500 under onError: deny, a traceback in the CLI.

Property: any JSON value (and any text) as the status, on a fresh Pod or an injected one with a
sidecar gone, is answered (never an internal error) by mutate.review and by the server's
answers.answer, and uninject takes it without raising.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from webhook.config import load_config_file, parse_config
from webhook.mutate import review
from webhook.policy import PodContext
from webhook.server.answers import answer
from webhook.uninject import read_status, reinjected, uninject

from engine_support import BASE_CONFIG, apply, decoded_patch, pod_review
from k8s_checks import LATEST_SCHEMA, pod_errors

STATUS = "sidecar-injector.io/status"
CONFIG = load_config_file(BASE_CONFIG)
DENY = parse_config({**CONFIG.model_dump(exclude_none=True), "onError": "deny"}, "test")
UNREADABLE = f"{STATUS} cannot be read; nothing is repaired"


def fresh_pod(status: str | None = None) -> dict[str, Any]:
    annotations = {} if status is None else {STATUS: status}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]}}


def injected_pod(profiles: str) -> dict[str, Any]:
    pod = fresh_pod()
    pod["metadata"]["annotations"]["sidecar-injector.io/profiles"] = profiles
    outcome = review(pod_review(pod), CONFIG)
    assert outcome.patched_pod is not None
    return copy.deepcopy(outcome.patched_pod)


INJECTED = [injected_pod(p) for p in ("proxy", "agent,logging", "proxy,jvm")]


@pytest.mark.parametrize("text", [
    "{not json", "[]", "null", '"x"', "5", '{"containers": 5}', '{"containers": "proxy"}', '{"created": 5}',
    '{"created": "spec.volumes"}', '{"appContainers": {"app": {"env": 5}}}', '{"appContainers": {"app": {"created": 3}}}',
    '{"appContainers": {"app": {"probes": ["image"]}}}', '{"appContainers": {"app": 1}}', '{"appContainers": []}',
    '{"terminationGracePeriodSeconds": 5}', '{"terminationGracePeriodSeconds": {"original": "x", "set": 30}}',
    '{"terminationGracePeriodSeconds": {"original": 1}}', '{"volumes": [{"a": 1}]}', '{"initContainers": [null, 3]}',
    '{"native": "yes", "containers": ["proxy"]}', '{"configHash": [], "containers": ["proxy"]}',
    '{"containers": ["proxy"], "native": true, "volumes": ["proxy-config", "podinfo", "proxy-token"], "profiles": 5}',
    "[" * 5000 + "]" * 5000,
])
def test_a_status_of_another_shape_is_unreadable_and_left_alone(text: str) -> None:
    pod = fresh_pod(text)
    assert read_status(pod) is None
    for config in (CONFIG, DENY):
        body = pod_review(pod)
        outcome = review(body, config)
        assert (outcome.decision, outcome.reason) == ("skipped", "already-injected")
        assert outcome.warnings == [UNREADABLE]
        reply = answer(orjson.dumps(body), config)
        assert reply.status == 200 and reply.body == orjson.dumps(outcome.review)
    undone = uninject(pod)
    assert not undone.changed and undone.pod == pod and undone.warnings == [f"{STATUS} cannot be read; left as it is"]


def test_what_injection_writes_is_readable_and_unknown_keys_are_ignored() -> None:
    for pod in INJECTED:
        assert read_status(pod) is not None
    status = json.loads(INJECTED[0]["metadata"]["annotations"][STATUS])
    pod = copy.deepcopy(INJECTED[0])
    pod["metadata"]["annotations"][STATUS] = json.dumps({**status, "addedLater": {"any": ["shape", 1]}})
    assert read_status(pod) == {**status, "addedLater": {"any": ["shape", 1]}}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 100) | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["proxy", "app", "podinfo", "proxy-config", "agent", "preStop", "readinessProbe",
                       "spec.volumes", "metadata.annotations", "volumeMounts", "lifecycle", ""]) | st.text(max_size=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=12,
)
STATUS_KEYS = ["version", "profiles", "native", "initContainers", "containers", "volumes", "configHash",
               "appContainers", "terminationGracePeriodSeconds", "shareProcessNamespace", "created"]
records = st.dictionaries(st.sampled_from(["volumeMounts", "env", "lifecycle", "probes", "created", "x"]), json_values,
                          max_size=4)
status_like = st.fixed_dictionaries({}, optional={
    **{key: json_values for key in STATUS_KEYS},
    "appContainers": st.dictionaries(st.sampled_from(["app", "web", "proxy"]), records | json_values, max_size=2),
    "terminationGracePeriodSeconds": st.fixed_dictionaries({}, optional={"original": json_values, "set": json_values}),
    "configHash": st.just(CONFIG.config_hash) | json_values,
})
texts = st.one_of(status_like.map(json.dumps), json_values.map(json.dumps), st.text(max_size=20))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.integers(-1, len(INJECTED) - 1), st.booleans())
@example('{"containers": ["proxy"], "native": true}', -1, False)  # a sidecar without its volumes, once
def test_any_status_is_answered_and_uninjected_without_an_internal_error(text: str, which: int, drop: bool) -> None:
    pod = fresh_pod() if which < 0 else copy.deepcopy(INJECTED[which])
    pod["metadata"]["annotations"][STATUS] = text
    if drop and which >= 0:
        pod["spec"]["initContainers"] = pod["spec"].get("initContainers", [])[1:]
        pod["spec"]["containers"] = [c for c in pod["spec"]["containers"] if c["name"] != "log-shipper"]
    body = pod_review(pod)
    outcome = review(copy.deepcopy(body), DENY)
    assert outcome.decision != "error", outcome.message
    reply = answer(orjson.dumps(body), DENY)
    assert reply.status == 200 and reply.decision != "error" and reply.body == orjson.dumps(outcome.review)
    ops = decoded_patch(outcome)
    if ops is not None:  # repaired from what the status names: a Pod the API server accepts
        assert pod_errors(apply(pod, ops), LATEST_SCHEMA) == []
    uninject(pod)
    uninject(pod, reinjected(pod, PodContext(namespace="shop"), CONFIG))
