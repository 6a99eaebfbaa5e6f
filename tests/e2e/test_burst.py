"""A rolling update of the webhook while a burst of Pods is created (scripts/burst.py), on the
webhook installed as operators install it (E2E_MODE=in-cluster): under failurePolicy Fail every
Pod is created and injected and the ReplicaSet controller sees no failed create; under Ignore no
Pod is created without its sidecar, and `sidecar-injector report` lists exactly those that are;
a Job of many Pods completes with every Pod injected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from .cluster import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.burst]
PODS = int(os.environ.get("E2E_BURST_PODS", "1000"))
COMPLETIONS = int(os.environ.get("E2E_BURST_COMPLETIONS", "1000"))


@pytest.fixture(scope="module")
def installed(webhook: str) -> str:
    if os.environ.get("E2E_MODE", "in-cluster") != "in-cluster":
        pytest.skip("restarts the webhook's Deployment: needs E2E_MODE=in-cluster")
    return webhook


def _burst(*args: str, timeout: float = 1800) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "burst.py"), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    print(json.dumps(result))  # the counts, in CI's log
    return result


@pytest.mark.parametrize("policy", ["Fail", "Ignore"])
def test_a_rolling_update_during_a_replicaset_burst(installed: str, policy: str, timing: Any) -> None:
    result = _burst("replicaset", "--pods", str(PODS), "--failure-policy", policy)
    timing(f"burst ({policy}): {PODS} Pods created during a webhook rollout (s)", result["seconds_to_create"])
    assert result["pods_created"] == PODS
    assert result["pods_without_sidecar"] == 0, result
    if policy == "Fail":
        assert result["failed_creates"] == 0, result
    assert result["report_lists_exactly_those"], result
    assert result["missed"] == []


def test_a_job_of_many_pods_completes_every_pod_injected(installed: str, timing: Any) -> None:
    result = _burst("job", "--completions", str(COMPLETIONS), "--parallelism", "100")
    timing(f"burst: a Job of {COMPLETIONS} Pods, 100 at a time, completed (s)", result["seconds_to_complete"])
    assert result["completed"] and result["succeeded"] == COMPLETIONS, result
    assert result["pods_injected"] == result["pods"] == COMPLETIONS, result
    assert result["missed"] == []
