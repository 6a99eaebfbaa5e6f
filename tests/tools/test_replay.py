"""scripts/replay.sh (and `sidecar-injector replay`) against a running server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, Server, run_cli

SCRIPT = REPO / "scripts" / "replay.sh"


def run_script(server: Server, directory: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = {**os.environ, "CACERT": str(server.ca_file)}
    return subprocess.run(["bash", str(SCRIPT), f"{server.url}/mutate", str(directory)], check=False,
                          capture_output=True, text=True, env=env, timeout=60, cwd=REPO)


def test_replay_script_shows_decisions_and_decoded_patches(server: Server) -> None:
    result = run_script(server, FIXTURES)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    fixtures = sorted(FIXTURES.rglob("*.review.json"))
    for fixture in fixtures:
        assert f"== {fixture.relative_to(FIXTURES)}  HTTP 200" in out
    assert "decision: allowed (decision=injected" in out
    assert "decision: allowed (decision=skipped" in out
    assert "decision: denied: annotation sidecar-injector.io/drain-seconds" in out
    assert re.search(r"warnings: [1-9]", out)
    assert '"op": "add"' in out  # the patch, base64-decoded and pretty-printed
    assert f"{len(fixtures)} reviews, 0 failed" in result.stderr


def test_replay_script_fails_when_a_request_fails(server: Server, tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "pod-basic.review.json", tmp_path / "good.review.json")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "no-uid.review.json").write_text('{"apiVersion": "admission.k8s.io/v1", '
                                                            '"kind": "AdmissionReview", "request": {}}')
    result = run_script(server, tmp_path)
    assert result.returncode == 1
    assert "== nested/no-uid.review.json  HTTP 400" in result.stdout
    assert "request.uid" in result.stdout
    assert "2 reviews, 1 failed" in result.stderr


def test_replay_subcommand_matches_the_script(server: Server, tmp_path: Path) -> None:
    for case in ("deployment-pod", "opt-out-annotation", "invalid-drain-seconds", "pod-v1beta1"):
        shutil.copy(FIXTURES / f"{case}.review.json", tmp_path)
    result = run_cli("replay", "--url", f"{server.url}/mutate", "--cacert", str(server.ca_file), str(tmp_path))
    assert result.returncode == 0, result.stderr
    script = run_script(server, tmp_path)
    assert result.stdout == script.stdout
