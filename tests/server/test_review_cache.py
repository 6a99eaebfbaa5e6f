"""The cache of identical reviews: same answer with the new uid, misses on any other difference,
emptied by a config reload, bounded; counted and logged like any review. An answer is kept the
second time its review is seen, so the third is the first hit."""

from __future__ import annotations

import base64
import copy
import logging
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from webhook.config import load_config_file, override
from webhook.server.answers import answer
from webhook.server.app import count, log_review
from webhook.server.metrics import create_metrics, exposition
from webhook.server.review_cache import ReviewCache
from webhook.tools.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config_file(ROOT / "bench" / "config.yaml")
TYPICAL: dict[str, Any] = orjson.loads((ROOT / "bench" / "fixtures" / "typical.review.json").read_bytes())


def _body(uid: str = "uid-1", **changes: Any) -> bytes:
    review = copy.deepcopy(TYPICAL)
    review["request"]["uid"] = uid
    for key, value in changes.items():
        review["request"][key] = value
    return orjson.dumps(review)


def test_a_repeat_with_another_uid_is_answered_from_the_cache_with_its_own_uid() -> None:
    cache = ReviewCache(8)
    answer(_body("uid-0"), CONFIG, cache)  # seen once: not kept yet
    assert len(cache) == 0
    first = answer(_body("uid-1"), CONFIG, cache)
    second = answer(_body("uid-2"), CONFIG, cache)
    third = answer(_body("uid-3"), CONFIG, cache)
    uncached = answer(_body("uid-2"), CONFIG)
    assert (first.cache, second.cache, third.cache, uncached.cache) == ("miss", "hit", "hit", None)
    assert second.body == uncached.body  # byte for byte what working it out gives
    assert orjson.loads(second.body)["response"]["uid"] == "uid-2" and second.uid == "uid-2"
    assert orjson.loads(third.body)["response"]["uid"] == "uid-3"
    assert (second.status, second.decision, second.reason) == (first.status, first.decision, first.reason)
    assert second.outcome is not None and second.outcome.uid == "uid-2"
    assert orjson.loads(base64.b64decode(orjson.loads(second.body)["response"]["patch"]))
    assert len(cache) == 1


@pytest.mark.parametrize("change", [
    {"namespace": "other"},
    {"operation": "UPDATE"},
    {"subResource": "status"},
    {"userInfo": {"username": "someone-else"}},
    {"dryRun": True},  # the answer is the same, but a dry run must have no Event (Outcome.dry_run)
])
def test_any_other_difference_the_answer_reads_misses(change: dict[str, Any]) -> None:
    cache = ReviewCache(8)
    answer(_body("uid-0"), CONFIG, cache)
    answer(_body("uid-1"), CONFIG, cache)
    other = answer(_body("uid-2", **change), CONFIG, cache)
    assert other.cache == "miss"
    assert other.body == answer(_body("uid-2", **change), CONFIG).body


@pytest.mark.parametrize("change", [
    {"options": {"kind": "CreateOptions", "fieldManager": "someone"}},
    {"object.metadata.managedFields.time": "2026-11-27T08:00:01Z"},  # a rollout that spans seconds
    {"object.spec.containers.0.image": "nginx:other"},
])
def test_a_difference_no_answer_depends_on_hits(change: dict[str, Any]) -> None:
    """The key is the part of the review the answer is made from (webhook.server.review_decode)."""
    cache = ReviewCache(8)
    answer(_body("uid-0"), CONFIG, cache)
    answer(_body("uid-1"), CONFIG, cache)
    (where, value), = change.items()
    review = orjson.loads(_body("uid-2"))
    if where.startswith("object."):
        node: Any = review["request"]
        *path, last = where.split(".")
        for step in path:
            node = node[int(step)] if step.isdigit() else node[step]
            if isinstance(node, list) and step == "managedFields":
                node = node[0]
        node[last] = value
    else:
        review["request"][where] = value
    raw = orjson.dumps(review)
    assert raw != _body("uid-2")
    hit = answer(raw, CONFIG, cache)
    assert hit.cache == "hit"
    assert hit.body == answer(raw, CONFIG).body


def test_a_different_object_misses() -> None:
    cache = ReviewCache(8)
    answer(_body("uid-0"), CONFIG, cache)
    answer(_body("uid-1"), CONFIG, cache)
    review = orjson.loads(_body("uid-2"))
    review["request"]["object"]["metadata"]["labels"]["extra"] = "1"
    assert answer(orjson.dumps(review), CONFIG, cache).cache == "miss"
    review["apiVersion"] = "admission.k8s.io/v1beta1"
    reply = answer(orjson.dumps(review), CONFIG, cache)
    assert reply.cache == "miss" and orjson.loads(reply.body)["apiVersion"] == "admission.k8s.io/v1beta1"


def test_a_new_config_empties_it() -> None:
    cache = ReviewCache(8)
    answer(_body("uid-0"), CONFIG, cache)
    answer(_body("uid-1"), CONFIG, cache)
    assert answer(_body("uid-1b"), CONFIG, cache).cache == "hit"
    reloaded = override(CONFIG, "deadlineSeconds", 3, "test")  # an equal config is still a reload
    assert answer(_body("uid-2"), reloaded, cache).cache == "miss"
    assert answer(_body("uid-3"), reloaded, cache).cache == "miss"
    assert answer(_body("uid-4"), reloaded, cache).cache == "hit"
    cache.clear()
    assert len(cache) == 0 and answer(_body("uid-5"), reloaded, cache).cache == "miss"


def test_it_is_bounded_and_keeps_the_recently_used() -> None:
    cache = ReviewCache(3)
    for n in range(5):
        answer(_body(f"a{n}", namespace=f"ns-{n}"), CONFIG, cache)
        answer(_body(f"b{n}", namespace=f"ns-{n}"), CONFIG, cache)
    assert len(cache) == 3
    assert answer(_body("b", namespace="ns-0"), CONFIG, cache).cache == "miss"  # evicted
    assert answer(_body("c", namespace="ns-4"), CONFIG, cache).cache == "hit"


def test_bad_reviews_and_on_error_answers_are_not_kept() -> None:
    cache = ReviewCache(8)
    assert answer(b"{}", CONFIG, cache).status == 400
    assert answer(_body(""), CONFIG, cache).status == 400
    small = override(CONFIG, "limits", {"maxPatchBytes": 1024}, "test")
    assert answer(_body("x"), small, cache).decision == "error"
    assert answer(_body("y"), small, cache).cache == "miss"
    assert len(cache) == 0


def test_hits_are_counted_and_logged_with_their_uid(caplog: pytest.LogCaptureFixture) -> None:
    cache = ReviewCache(8)
    metrics = create_metrics()
    caplog.set_level(logging.INFO, logger="webhook.review")
    for uid in ("u1", "u2", "u3", "u4"):
        reply = answer(_body(uid), CONFIG, cache)
        count(metrics, reply, 0.001)
        log_review(reply, 0.001)
    text = exposition(metrics)[0].decode()
    assert 'sidecar_injector_review_cache_total{result="hit"} 2.0' in text
    assert 'sidecar_injector_review_cache_total{result="miss"} 2.0' in text
    assert 'sidecar_injector_reviews_total{decision="injected",reason="injected"} 4.0' in text
    lines = [r.fields for r in caplog.records if r.name == "webhook.review"]  # type: ignore[attr-defined]
    assert [(f["uid"], f["decision"]) for f in lines] == [(u, "injected") for u in ("u1", "u2", "u3", "u4")]


def test_the_flag_and_its_env_var() -> None:
    assert build_parser({}).parse_args(["serve"]).review_cache == 512
    assert build_parser({}).parse_args(["serve", "--no-review-cache"]).review_cache == 0
    assert build_parser({"SIDECAR_INJECTOR_REVIEW_CACHE": "0"}).parse_args(["serve"]).review_cache == 0
    assert build_parser({}).parse_args(["serve", "--review-cache", "64"]).review_cache == 64


def test_a_kept_outcome_has_every_field_but_the_pod_and_the_ops() -> None:
    import dataclasses

    cache = ReviewCache(8)
    answer(_body("uid-0"), CONFIG, cache)
    first = answer(_body("uid-1"), CONFIG, cache)
    kept = cache.get(next(iter(cache._outcomes)), CONFIG)
    assert kept is not None and first.outcome is not None
    for field in dataclasses.fields(first.outcome):
        if field.name not in ("patch", "patched_pod"):
            assert getattr(kept, field.name) == getattr(first.outcome, field.name), field.name
    assert kept.patch is None and kept.patched_pod is None


def test_reviews_seen_once_only_fill_a_bounded_set_of_keys() -> None:
    cache = ReviewCache(2)
    for n in range(50):
        assert answer(_body(f"u{n}", namespace=f"ns-{n}"), CONFIG, cache).cache == "miss"
    assert len(cache) == 0 and len(cache._seen) <= 8


@pytest.mark.parametrize("how", ["uid also a label value", "escaped uid", "not a plain uid"])
def test_the_key_is_the_review_not_its_spelling(how: str) -> None:
    from webhook.server.review_cache import review_key

    def body(uid: str, label: str) -> bytes:
        review = copy.deepcopy(TYPICAL)
        review["request"]["uid"] = uid
        review["request"]["object"]["metadata"]["labels"]["x"] = label
        raw = orjson.dumps(review)
        if how == "escaped uid":
            raw = raw.replace(f'"uid":"{uid}"'.encode(), b'"uid":"\\u0061' + uid[1:].encode() + b'"')
        return raw

    uids = ("a1", "a2", "a3") if how != "not a plain uid" else ("a 1", "a 2", "a 3")
    raws = [body(u, u if how == "uid also a label value" else "same") for u in uids]
    keys = [review_key(orjson.loads(r)) for r in raws]
    assert [uid for _, uid in keys] == list(uids)  # type: ignore[misc]
    cache = ReviewCache(8)
    replies = [answer(r, CONFIG, cache) for r in raws]
    if how == "uid also a label value":  # the label differs with the uid: never the same review
        assert len({key for key, _ in keys}) == 3  # type: ignore[misc]
        assert [r.cache for r in replies] == ["miss", "miss", "miss"]
    else:
        assert len({key for key, _ in keys}) == 1  # type: ignore[misc]
        assert [r.cache for r in replies] == ["miss", "miss", "hit"]
        assert orjson.loads(replies[2].body)["response"]["uid"] == orjson.loads(raws[2])["request"]["uid"]
    for raw, reply in zip(raws, replies):
        assert reply.body == answer(raw, CONFIG).body


def test_reviews_that_differ_beyond_the_uid_have_different_keys() -> None:
    from webhook.server.review_cache import review_key

    a, b = _body("3f0e-11"), _body("9a9a-22")
    assert review_key(orjson.loads(a))[0] == review_key(orjson.loads(b))[0]  # type: ignore[index]
    c = _body("3f0e-11", namespace="x")
    assert review_key(orjson.loads(c))[0] != review_key(orjson.loads(a))[0]  # type: ignore[index]


def test_a_pinned_hash_seed_switches_the_key_to_a_keyed_digest() -> None:
    """PYTHONHASHSEED makes Python's hash predictable; the cache must not rely on it then."""
    import subprocess
    import sys

    code = ("import webhook.server.review_cache as r, orjson; from pathlib import Path;"
            "raw = Path('bench/fixtures/typical.review.json').read_bytes();"
            "print(r._digest is hash, r.review_key(orjson.loads(raw))[0][0])")
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}).stdout.split()
            for seed in ("0", "0", "random")]
    assert runs[0][0] == runs[1][0] == "False" and runs[2][0] == "True"
    assert runs[0][1] != runs[1][1]  # a secret per process, even with the same seed


def _idle(cache: ReviewCache) -> None:
    for n in range(cache.idle_after):
        answer(_body(f"u{n}", namespace=f"ns-{n}"), CONFIG, cache)
    assert cache.idle


def test_after_a_run_of_misses_the_cache_idles_and_samples() -> None:
    cache = ReviewCache(8, idle_after=4, sample_every=3, rng=random.Random(1))
    assert [answer(_body(f"u{n}", namespace=f"ns-{n}"), CONFIG, cache).cache for n in range(4)] == ["miss"] * 4
    results = [answer(_body(f"v{n}", namespace=f"other-{n}"), CONFIG, cache).cache for n in range(300)]
    assert set(results) == {"miss", "skip"} and cache.idle
    assert 0.2 < results.count("miss") / len(results) < 0.47  # one in three on average
    skipped = answer(_body("u-plain", namespace="ns-x"), CONFIG)
    assert answer(_body("u-plain", namespace="ns-x"), CONFIG, cache).body == skipped.body  # same answer


def test_an_idle_cache_wakes_on_a_burst_of_repeats() -> None:
    cache = ReviewCache(8, idle_after=4, sample_every=3, rng=random.Random(2))
    _idle(cache)
    burst = [answer(_body(f"burst-{n}"), CONFIG, cache).cache for n in range(40)]
    woke = burst.index("hit")
    assert woke <= 4 * 3 and burst[woke:] == ["hit"] * (40 - woke) and not cache.idle


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shift", [0, 1])
def test_an_idle_cache_wakes_on_repeats_in_step_with_its_lookups(seed: int, shift: int) -> None:
    """Repeats every other review, among distinct ones: a fixed lookup period of 2 would only
    ever look at one of the two (which one depends on where the run starts) and, when it
    looks at the distinct ones, never notice the repeats."""
    cache = ReviewCache(8, idle_after=4, sample_every=2, rng=random.Random(seed))
    _idle(cache)
    for n in range(shift):
        answer(_body(f"before-{n}", namespace=f"b-{n}"), CONFIG, cache)
    repeats = []
    for n in range(60):
        repeats.append(answer(_body(f"repeat-{n}"), CONFIG, cache).cache)
        answer(_body(f"distinct-{n}", namespace=f"d-{n}"), CONFIG, cache)
    assert repeats[-40:] == ["hit"] * 40


def test_a_reload_wakes_an_idle_cache() -> None:
    cache = ReviewCache(8, idle_after=2, sample_every=100)
    for n in range(2):
        answer(_body(f"u{n}", namespace=f"ns-{n}"), CONFIG, cache)
    assert cache.idle
    cache.clear()
    assert not cache.idle and answer(_body("u9"), CONFIG, cache).cache == "miss"


def test_only_lookups_are_counted() -> None:
    cache = ReviewCache(8, idle_after=1, sample_every=4, rng=random.Random(3))
    metrics = create_metrics()
    replies = [answer(_body(f"u{n}", namespace=f"ns-{n}"), CONFIG, cache) for n in range(12)]
    for reply in replies:
        count(metrics, reply, 0.001)
    results = [reply.cache for reply in replies]
    assert "skip" in results
    text = exposition(metrics)[0].decode()
    assert f'sidecar_injector_review_cache_total{{result="miss"}} {float(results.count("miss"))}' in text
    assert 'result="skip"' not in text  # a skipped lookup costs no write
