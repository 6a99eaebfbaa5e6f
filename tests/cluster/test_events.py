"""Which Event a decision gets (webhook.cluster.events.event_of): on the Pod's controller, or on a
bare Pod by name; none for dry runs, shadow decisions, reinvocations or what is not a Pod
creation; one message per decision, so a controller's Pods aggregate into one Event."""

from __future__ import annotations

from typing import Any

import pytest

from webhook.cluster.events import Target, event_of
from webhook.mutate import Outcome

RS = ("apps/v1", "ReplicaSet", "web-6b7f", "rs-uid")


def _outcome(decision: str = "injected", reason: str = "injected", message: str = "injecting profiles proxy",
             **fields: Any) -> Outcome:
    base: dict[str, Any] = {"kind": "Pod", "operation": "CREATE", "namespace": "shop", "name": "web-6b7f-x1",
                            "owner": RS}
    return Outcome({}, "uid", decision, reason, message, **{**base, **fields})


@pytest.mark.parametrize("decision, reason, type_", [
    ("injected", "Injected", "Normal"), ("skipped", "InjectionSkipped", "Normal"),
    ("denied", "InjectionDenied", "Warning"), ("error", "InjectionFailed", "Warning")])
def test_each_decision_has_its_reason_on_the_controller(decision: str, reason: str, type_: str) -> None:
    target, got_reason, got_type, message = event_of(_outcome(decision, decision))
    assert (got_reason, got_type) == (reason, type_)
    assert target == Target("apps/v1", "ReplicaSet", "web-6b7f", "shop", "rs-uid")
    assert "web-6b7f-x1" not in message, "the Pods of one controller share one message, so one Event"


def test_a_skip_says_it_was_not_injected() -> None:
    assert event_of(_outcome("skipped", "opted-out", "the Pod sets annotation x"))[3] == \
        "not injected: the Pod sets annotation x"


def test_a_bare_pod_gets_it_by_name_with_its_uid_looked_up_later() -> None:
    target, *_ = event_of(_outcome(owner=None, name="bare"))
    assert target == Target("v1", "Pod", "bare", "shop", None)


@pytest.mark.parametrize("fields", [
    {"dry_run": True}, {"decision": "shadow", "reason": "shadow"}, {"reason": "already-injected",
                                                                     "decision": "skipped"},
    {"operation": "UPDATE"}, {"kind": "example.com/Pod"}, {"owner": None, "name": "gen-*"}])
def test_none_for_what_must_have_no_side_effect_or_no_object(fields: dict[str, Any]) -> None:
    assert event_of(_outcome(**fields)) is None


def test_a_long_message_is_bounded() -> None:
    assert len(event_of(_outcome("denied", "invalid-annotation", "x" * 5000))[3]) == 1024
