"""Write the status annotation of each reinvoked-* golden review as this config injects it now.

A reinvoked-* review is an injected Pod that a later webhook changed; its status must carry the
current config hash, or repair trusts none of the comparisons (a stale hash turns "changed"
detection off, and the golden stops showing it). The status is what injection writes for the
Pod without our additions, so it follows every change of the config or of the status format.
test_golden.py checks that the fixtures are current; after a change that makes them stale, run

    .venv/bin/python tests/refresh_reinvoked.py

and read the diff (only the status annotations may change), then refresh the goldens.
"""

from __future__ import annotations

import json
from typing import Any

from webhook.mutate import review
from webhook.uninject import uninject

from engine_support import FIXTURES, case_config, case_names, load_review

STATUS = "sidecar-injector.io/status"


def reinvoked_cases() -> list[str]:
    return [case for case in case_names() if case.startswith("reinvoked-")]


def current_status(body: dict[str, Any], case: str) -> str:
    """The status injection writes now for the review's Pod without our additions."""
    pod = body["request"]["object"]
    original = uninject(pod).pod
    outcome = review({**body, "request": {**body["request"], "object": original}}, case_config(case))
    assert outcome.patched_pod is not None, f"{case}: the Pod without our additions is not injected"
    return str(outcome.patched_pod["metadata"]["annotations"][STATUS])


def refresh(case: str) -> bool:
    """Rewrite the case's status annotation; whether it changed."""
    body = load_review(case)
    annotations = body["request"]["object"]["metadata"]["annotations"]
    status = current_status(body, case)
    if annotations[STATUS] == status:
        return False
    annotations[STATUS] = status
    (FIXTURES / f"{case}.review.json").write_text(json.dumps(body, indent=2) + "\n")
    return True


if __name__ == "__main__":
    for name in reinvoked_cases():
        print(f"{name}: {'refreshed' if refresh(name) else 'current'}")
