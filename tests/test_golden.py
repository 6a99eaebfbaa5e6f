"""Golden cases: tests/fixtures/<case>.review.json in, <case>.expected.yaml out.

The fixtures are the readable spec of what injection does. Run with REFRESH_GOLDENS=1 to
rewrite the expected files after an intended change (then read the diff); an expected file
whose review is gone fails the run, so stale goldens cannot linger.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml

from webhook.mutate import review

from engine_support import (
    FIXTURES,
    apply,
    case_config,
    case_names,
    decoded_patch,
    load_review,
    lost_user_data,
    op_paths_allowed,
    server_answer_differs,
    summary,
)
from k8s_checks import LATEST_SCHEMA, pod_errors
from refresh_reinvoked import current_status, reinvoked_cases

REFRESH = os.environ.get("REFRESH_GOLDENS") == "1"
CASES = case_names()


def _dump(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=120, allow_unicode=True)


def test_cases_exist() -> None:
    assert len(CASES) >= 30


def test_no_stale_goldens() -> None:
    expected = {p.name.removesuffix(".expected.yaml") for p in FIXTURES.glob("*.expected.yaml")}
    configs = {p.name.removesuffix(".config.yaml") for p in FIXTURES.glob("*.config.yaml")} - {"config"}
    assert expected - set(CASES) == set(), "expected files without a review: delete them"
    assert configs - set(CASES) == set(), "config overrides without a review: delete them"


@pytest.mark.parametrize("case", reinvoked_cases())
def test_reinvoked_reviews_carry_the_status_injection_writes_now(case: str) -> None:
    """With a stale config hash repair trusts no comparison, and the goldens stop showing "changed"."""
    body = load_review(case)
    written = body["request"]["object"]["metadata"]["annotations"]["sidecar-injector.io/status"]
    assert written == current_status(body, case), f"{case}: stale status; run tests/refresh_reinvoked.py"
    assert json.loads(written)["configHash"] == case_config(case).config_hash


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    body = load_review(case)
    outcome = review(body, case_config(case))
    actual = _dump(summary(outcome))
    golden = FIXTURES / f"{case}.expected.yaml"
    if REFRESH or not golden.exists():
        golden.write_text(actual)
        if not REFRESH:
            pytest.fail(f"{golden.name} was missing and has been written: review it and commit it")
    assert actual == golden.read_text(), f"{case}: output differs from {golden.name} (REFRESH_GOLDENS=1 rewrites)"


@pytest.mark.parametrize("case", CASES)
def test_patch_is_sound(case: str) -> None:
    """The patch applies, yields the recorded Pod, writes only where injection may, and
    loses none of the user's data; the result passes the API server's rules."""
    body = load_review(case)
    config = case_config(case)
    outcome = review(body, config)
    assert not server_answer_differs(body, config, outcome)
    response = outcome.review["response"]
    assert response["uid"] == body["request"]["uid"]
    assert outcome.review["apiVersion"] == body["apiVersion"]
    for warning in response.get("warnings", []):
        assert len(warning) < 120 and warning.isprintable()
    ops = decoded_patch(outcome)
    if ops is None:
        assert outcome.decision in ("skipped", "denied", "error", "shadow")
        return
    assert response["patchType"] == "JSONPatch"
    original = body["request"]["object"]
    patched = apply(original, ops)
    assert patched == outcome.patched_pod
    assert op_paths_allowed(ops) == []
    assert list(lost_user_data(original, patched)) == []

    version = str(config.kube_version)
    errors = pod_errors(patched, version)
    errors += pod_errors(patched, LATEST_SCHEMA)  # the newest API must accept it too
    if not config.kube_version.native_sidecars:
        errors += pod_errors(patched, "1.25")  # configured for old clusters: the oldest schema shipped
    assert errors == []


@pytest.mark.parametrize("case", CASES)
def test_reinjection_adds_nothing(case: str) -> None:
    """A patched Pod comes back unchanged: by its status annotation, and even without it."""
    body = load_review(case)
    config = case_config(case)
    first = review(body, config)
    if first.patched_pod is None:
        return
    again = {**body, "request": {**body["request"], "object": first.patched_pod}}
    assert review(again, config).reason == "already-injected"

    stripped = dict(first.patched_pod)
    annotations = dict(stripped["metadata"]["annotations"])
    del annotations["sidecar-injector.io/status"]
    stripped["metadata"] = {**stripped["metadata"], "annotations": annotations}
    again = {**body, "request": {**body["request"], "object": stripped}}
    second = review(again, config)
    assert second.patched_pod is None, decoded_patch(second)
    assert second.reason == "nothing-to-add"
