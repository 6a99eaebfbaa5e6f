"""The server tells its ReviewObserver (webhook.interface) of every decision, after the reply,
and of nothing else; an observer that fails changes no answer."""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from webhook.config import load_config_file
from webhook.mutate import Outcome
from webhook.server.app import ServiceState, WebhookApp
from webhook.server.metrics import create_metrics
from webhook.server.review_cache import ReviewCache

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config_file(ROOT / "bench" / "config.yaml")
TYPICAL: dict[str, Any] = orjson.loads((ROOT / "bench" / "fixtures" / "typical.review.json").read_bytes())


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.outcomes: list[Outcome] = []
        self.fail = fail

    def reviewed(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self.fail:
            raise RuntimeError("observer bug")


def _body(uid: str) -> bytes:
    review = copy.deepcopy(TYPICAL)
    review["request"]["uid"] = uid
    return orjson.dumps(review)


def _post(state: ServiceState, *bodies: bytes, content_type: str = "application/json") -> list[httpx.Response]:
    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=WebhookApp(state))
        async with httpx.AsyncClient(transport=transport, base_url="https://webhook") as client:
            return [await client.post("/mutate", content=body, headers={"content-type": content_type})
                    for body in bodies]
    return asyncio.run(send_all())


def _state(observer: Recorder | None, cache: ReviewCache | None = None) -> ServiceState:
    return ServiceState(config=CONFIG, metrics=create_metrics(), certificate_loaded=True, observer=observer,
                        review_cache=cache)


def test_each_decision_is_told_with_its_outcome() -> None:
    recorder = Recorder()
    [response] = _post(_state(recorder), _body("uid-1"))
    assert response.status_code == 200
    [outcome] = recorder.outcomes
    assert (outcome.uid, outcome.decision) == ("uid-1", "injected")
    assert outcome.review == response.json()


def test_answers_from_the_cache_are_told_with_their_own_uid() -> None:
    recorder = Recorder()
    responses = _post(_state(recorder, ReviewCache(8)), *(_body(f"uid-{n}") for n in range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [o.uid for o in recorder.outcomes] == ["uid-0", "uid-1", "uid-2"]
    assert {o.decision for o in recorder.outcomes} == {"injected"}
    assert recorder.outcomes[2].patch is None  # the cache keeps only what a reply needs


def test_http_errors_are_not_told() -> None:
    recorder = Recorder()
    bad_json, = _post(_state(recorder), b"{not json")
    wrong_type, = _post(_state(recorder), _body("uid-1"), content_type="text/plain")
    assert (bad_json.status_code, wrong_type.status_code) == (400, 415)
    assert recorder.outcomes == []


def test_a_failing_observer_changes_no_answer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="webhook.review")
    [quiet] = _post(_state(None), _body("uid-1"))
    failing = Recorder(fail=True)
    [told] = _post(_state(failing), _body("uid-1"))
    assert len(failing.outcomes) == 1
    assert (told.status_code, told.content) == (quiet.status_code, quiet.content)
    assert any(r.getMessage() == "review observer failed" for r in caplog.records)
