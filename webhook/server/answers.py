"""What a /mutate body is answered: its bytes in, a ``Reply`` (status, body, and what is logged
and counted) out, within the config's deadline.

The body is decoded to the fields the review reads (``review_decode``; parsed whole only when
those cannot hold it), answered from the review cache when an identical review was answered
before (``review_cache``), else by the pure ``mutate.review``; a malformed request is an HTTP
error with a JSON body, never a denial. A review that misses ``deadlineSeconds`` is answered
by the onError policy instead (``deadline``). The HTTP plumbing around it is ``app``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import orjson

from webhook.config import Config
from webhook.errors import ReviewError
from webhook.mutate import NamespaceLookup, Outcome, on_error, review
from webhook.server.deadline import run_within
from webhook.server.review_cache import ReviewCache, review_key, with_uid
from webhook.server.review_decode import decode_review

DEADLINE_REASON = "deadline-exceeded"


@dataclass(slots=True)  # not frozen: built per request, and frozen init costs twice as much
class Reply:
    """An HTTP answer for /mutate plus what is logged and counted about it."""

    status: int
    body: bytes
    decision: str  # injected | skipped | denied | error | shadow
    reason: str
    outcome: Outcome | None = None
    error: str | None = None
    uid: str | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    exc: BaseException | None = None
    cache: str | None = None  # the review cache: hit, miss, or skip (idle); None: not asked (no cache, bad body)


def error_reply(status: int, reason: str, message: str, uid: str | None = None, **extra: Any) -> Reply:
    """A JSON ``{"error": ...}`` answer; kopf's rule: a malformed request is a 4xx, never a denial."""
    return Reply(status, orjson.dumps({"error": message}), "error", reason, error=message, uid=uid, **extra)


def _uid_of(body: Any) -> str | None:
    request = body.get("request") if isinstance(body, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) else None


def answer(raw: bytes, config: Config, cache: ReviewCache | None = None,
           namespaces: NamespaceLookup | None = None) -> Reply:
    """Body bytes -> reply: 200 with the AdmissionReview response, 400 for a bad review, 500 for a bug.

    The body is decoded to the fields the review reads (``review_decode``; parsed whole only when
    those cannot hold it), so the Outcome's ``patched_pod`` is of that projection: only the
    response is sent and kept. With a ``cache``, a review whose projection is identical to an
    earlier one's but for its uid gets the earlier answer with its own uid (see
    webhook.server.review_cache; an idle cache skips most lookups); a body parsed whole is never cached."""
    body = decode_review(raw)
    projected = body is not None
    if body is None:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            return error_reply(400, "malformed-json", f"request body is not valid JSON: {error}")
    consulted = cache is not None and projected and cache.consulted()
    key = review_key(body) if consulted else None
    if key is not None:
        assert cache is not None
        found = cache.get(key[0], config)
        if found is not None:
            return outcome_reply(with_uid(found, key[1]), cache="hit")
    try:
        outcome = review(body, config, fresh_copies=False, namespaces=namespaces)  # only its response is sent and kept
        if projected and outcome.reason == "internal-error" and (whole := _parsed_whole(raw)) is not None:
            # A value the projection kept as it is but the whole parse reads otherwise (an
            # integer beyond 64 bits inside a probe handler a startupProbe copies): the whole
            # body decides, as it did before the projection.
            body, projected, key = whole, False, None
            outcome = review(body, config, fresh_copies=False, namespaces=namespaces)
    except ReviewError as error:
        return error_reply(400, "invalid-review", str(error), _uid_of(body))
    except RecursionError:
        return too_deep(body)
    except Exception as error:  # noqa: BLE001 - one bad request must cost one 500, not the worker
        return error_reply(500, "internal-error", "internal error while reviewing; see the webhook's log",
                           _uid_of(body), exc=error)
    if key is None:
        return outcome_reply(outcome, cache="skip" if cache is not None and projected and not consulted else None)
    reply = outcome_reply(outcome, cache="miss")
    assert cache is not None
    cache.put(key[0], config, outcome, len(reply.body))
    return reply


def _parsed_whole(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # valid JSON orjson refuses (a number beyond a float's range)
        return None


def too_deep(body: Any) -> Reply:
    """The core leaves RecursionError to the edge: only a pathologically nested request causes it
    (orjson accepts 1024 levels, Python recurses about 1000 deep); no Kubernetes object nests so."""
    return error_reply(400, "too-deeply-nested", "request body nests too deeply to review", _uid_of(body))


def outcome_reply(outcome: Outcome, cache: str | None = None) -> Reply:
    return Reply(200, orjson.dumps(outcome.review), outcome.decision, outcome.reason, outcome, uid=outcome.uid,
                 cache=cache)


def deadline_reply(raw: bytes, config: Config) -> Reply:
    """The onError answer for a review that missed the deadline (or the 400 a bad body gets anyway).

    Parses the body again: this is the rare path, and a late pooled review still holds its copy.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return error_reply(400, "malformed-json", f"request body is not valid JSON: {error}")
    message = f"the review did not finish within the {config.deadlineSeconds:g}s deadline"
    try:
        return outcome_reply(on_error(body, config, DEADLINE_REASON, message))
    except ReviewError as error:
        return error_reply(400, "invalid-review", str(error), _uid_of(body))
    except RecursionError:
        return too_deep(body)


async def answer_in_time(raw: bytes, config: Config, started: float, executor: Executor | None = None,
                         judge: Callable[[bytes, Config], Reply] = answer) -> Reply:
    """``judge(raw, config)``, or the onError answer if it is not done ``deadlineSeconds`` after ``started``."""
    reply = await run_within(lambda: judge(raw, config), len(raw), config.deadlineSeconds, started, executor)
    return reply if reply is not None else deadline_reply(raw, config)
