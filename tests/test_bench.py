"""The benchmark code runs, and its verification refuses wrong answers. No timing is asserted.

Only the in-process part runs here (no servers, no wrk, no kopf): a few iterations of the
micro-benchmark, then the check every counted response goes through, fed broken answers.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # bench/ is a directory of the checkout, not part of the wheel
    sys.path.insert(0, str(REPO))

from bench.micro import TIMED, naive_answer, run_micro  # noqa: E402
from bench.verify import FIXTURES, VerificationError, load_config, load_fixture, verify_response  # noqa: E402
from webhook.server.answers import answer  # noqa: E402


@pytest.fixture(scope="module")
def config() -> Any:
    return load_config()


def _answer(fixture_name: str, config: Any) -> tuple[Any, dict[str, Any]]:
    fixture = load_fixture(fixture_name, config)
    reply = answer(fixture.raw, config)
    assert reply.status == 200
    return fixture, orjson.loads(reply.body)


def _with_patch(review: dict[str, Any], ops: list[dict[str, Any]]) -> bytes:
    changed = {**review, "response": {**review["response"], "patch": base64.b64encode(orjson.dumps(ops)).decode()}}
    return orjson.dumps(changed)


def _ops(review: dict[str, Any]) -> list[dict[str, Any]]:
    return list(orjson.loads(base64.b64decode(review["response"]["patch"])))


def test_fixtures_are_the_advertised_sizes(config: Any) -> None:
    sizes = {name: load_fixture(name, config).size for name in FIXTURES}
    assert 5_000 <= sizes["typical"] <= 8_000
    assert 45_000 <= sizes["big"] <= 55_000


def test_micro_benchmark_runs_in_tiny_mode(config: Any) -> None:
    results = run_micro(iterations=2, repeats=2, config=config)
    assert [r.fixture for r in results] == list(FIXTURES)
    for result in results:
        assert set(result.micros) == set(TIMED) and set(result.ratios) == set(TIMED)
        assert all(value > 0 for value in result.micros.values())
        assert result.ratios["loads"][0] == pytest.approx(1.0)


@pytest.mark.parametrize("name", FIXTURES)
def test_correct_answers_pass(name: str, config: Any) -> None:
    fixture, review = _answer(name, config)
    verify_response(orjson.dumps(review), fixture)
    verify_response(naive_answer(fixture.raw, config), fixture)  # another diff, the same Pod


def test_verification_rejects_wrong_answers(config: Any) -> None:
    fixture, review = _answer("typical", config)
    ops = _ops(review)
    assert len(ops) > 1
    sidecar_op = next(i for i, op in enumerate(ops) if op["path"].startswith("/spec/initContainers"))
    value_op = next(i for i, op in enumerate(ops) if isinstance(op.get("value"), str))
    wrong: dict[str, bytes] = {
        "an operation dropped": _with_patch(review, ops[:sidecar_op] + ops[sidecar_op + 1:]),
        "a value changed": _with_patch(review, [*ops[:value_op], {**ops[value_op], "value": "tampered"},
                                                *ops[value_op + 1:]]),
        "an extra operation": _with_patch(review, [*ops, {"op": "add", "path": "/metadata/labels/extra",
                                                          "value": "x"}]),
        "a path that does not apply": _with_patch(review, [{"op": "replace", "path": "/spec/nothing/0", "value": 1}]),
        "an empty patch": _with_patch(review, []),
        "another uid": orjson.dumps({**review, "response": {**review["response"], "uid": "someone-else"}}),
        "a denial": orjson.dumps({**review, "response": {**review["response"], "allowed": False}}),
        "no patchType": orjson.dumps({**review, "response": {k: v for k, v in review["response"].items()
                                                              if k != "patchType"}}),
        "a patch that is not base64": orjson.dumps({**review, "response": {**review["response"], "patch": "%%%"}}),
        "not JSON": b"<html>502 Bad Gateway</html>",
    }
    for what, body in wrong.items():
        with pytest.raises(VerificationError):
            verify_response(body, fixture)
            pytest.fail(f"verification accepted {what}")


def test_a_wrong_answer_stays_wrong_after_a_right_one(config: Any) -> None:
    """Bodies already verified are remembered by their bytes, never by their uid or shape."""
    fixture, review = _answer("typical", config)
    verify_response(orjson.dumps(review), fixture)
    with pytest.raises(VerificationError):
        verify_response(_with_patch(review, _ops(review)[1:]), fixture)
