"""The per-config memo of resolve() and inject()'s per-settings plan: same answers, no shared state.

A review's output must never alias what the next review starts from: a caller that changes
the injected Pod (the offline CLI edits templates) must not change later answers.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from webhook.config import load_config_file
from webhook.jsontree import Template, pure_json
from webhook.mutate import review

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "bench" / "config.yaml"
TYPICAL = ROOT / "bench" / "fixtures" / "typical.review.json"


def _scribble(value: Any) -> None:
    """Change every dict and list in a tree in place."""
    if isinstance(value, dict):
        for item in list(value.values()):
            _scribble(item)
        value["scribbled"] = True
    elif isinstance(value, list):
        for item in list(value):
            _scribble(item)
        value.append("scribbled")


def test_later_reviews_do_not_see_changes_to_earlier_outputs() -> None:
    config = load_config_file(CONFIG)
    pristine = copy.deepcopy(config.model_dump())
    raw = TYPICAL.read_bytes()
    first = review(orjson.loads(raw), config)
    expected = orjson.dumps(first.review)
    assert first.decision == "injected" and first.patched_pod is not None and first.patch is not None
    _scribble(first.patched_pod)
    _scribble(first.patch)
    second = review(orjson.loads(raw), config)
    assert orjson.dumps(second.review) == expected
    assert config.model_dump() == pristine


def test_resolve_is_memoized_per_config_and_a_new_config_starts_empty() -> None:
    config = load_config_file(CONFIG)
    raw = TYPICAL.read_bytes()
    review(orjson.loads(raw), config)
    review(orjson.loads(raw), config)
    assert len(config.resolved) == 1
    (settings, _), = config.resolved.values()
    assert "inject" in settings.plan_cache
    assert load_config_file(CONFIG).resolved == {}


def test_templates_that_orjson_would_change_are_copied_by_walking() -> None:
    assert pure_json({"a": [1, 2.5, "x", None, True, {"b": {}}]})
    for odd in ({"a": (1, 2)}, {"a": float("nan")}, {"a": 2**70}, {1: "x"}, {"a": b"x"}):
        assert not pure_json(odd)
        template = Template(odd)  # type: ignore[arg-type]
        copied = template.copy()
        assert copied == odd and type(copied) is dict and copied is not odd


def _plans(config: Any) -> bytes:
    """Every prepared plan's templates, serialised: what shared outputs must never change."""
    values = []
    for settings, _ in config.resolved.values():
        plan = settings.plan_cache.get("inject")
        if plan is not None:
            values += [t.value for *_, t in plan.init] + [s[2].value for s in plan.sidecars]
            values += [v.value for v, _ in plan.volumes]
    return orjson.dumps(values)


def test_shared_outputs_give_the_same_answers_and_never_change_the_plan() -> None:
    """The server's fresh_copies=False: the answer is the one a fresh copy gives, for every golden
    case (pod-level resources, legacy sidecars, clashes...), and the plans they were built from
    stay as prepared, so the same reviews asked again get the same answers."""
    from engine_support import case_config, case_names, load_review

    cases = [(case, case_config(case)) for case in case_names()]
    shared_first = [review(load_review(case), config, fresh_copies=False) for case, config in cases]
    plans = [_plans(config) for _, config in cases]
    fresh = [review(load_review(case), config) for case, config in cases]
    shared_again = [review(load_review(case), config, fresh_copies=False) for case, config in cases]
    for (case, config), a, b, c, plan in zip(cases, shared_first, fresh, shared_again, plans):
        assert a.review == b.review == c.review, case
        assert a.patched_pod == b.patched_pod, case
        assert _plans(config) == plan, case


def test_large_override_values_are_not_kept_in_the_memo() -> None:
    """300 Pods with unique 200 KB env values grew a worker by 167 MB: values are bounded, and a
    question whose override values hold more than MEMO_OVERRIDE_CHARS is resolved afresh."""
    from webhook.settings import MEMO_OVERRIDE_CHARS

    from engine_support import BASE_CONFIG, pod_review

    config = load_config_file(BASE_CONFIG)

    def pod(value: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "annotations": {"sidecar-injector.io/proxy.env.LOG_LEVEL": value}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}

    for index in range(20):
        outcome = review(pod_review(pod(f"{index:04d}" + "x" * MEMO_OVERRIDE_CHARS)), config, fresh_copies=False)
        assert outcome.decision == "injected"
        env = outcome.patched_pod["spec"]["initContainers"][0]["env"]
        assert next(var["value"] for var in env if var["name"] == "LOG_LEVEL").startswith(f"{index:04d}")
    assert config.resolved == {}
    review(pod_review(pod("debug")), config)
    review(pod_review(pod("debug")), config)
    assert len(config.resolved) == 1
