"""A bounded memo of answers to identical reviews (per worker).

Every Pod of a ReplicaSet scale-up or a Job arrives identical except ``request.uid`` and
the managedFields timestamps: on CREATE the API server sends the Pod before its name and uid
exist. A rollout of a thousand Pods asks the same question a thousand times; this answers
the repeats for about the cost of decoding the body.

The key is taken from the review as the server decodes it (``webhook.server.review_decode``: every
field the answer depends on, and only those: apiVersion, kind, operation, subResource,
namespace, userInfo, the Pod fields the engine reads), re-serialised with ``request.uid``
blanked, so reviews that differ in nothing else (a managedFields time, an image tag) share
an answer. Its length and Python's hash of it are kept (SipHash, keyed with a secret random
per process, so a client cannot aim for a collision; 64 bits make an accidental one among a
few hundred entries a chance of about 1 in 10^16 per review). Keeping the bytes themselves,
or a second checksum, cost more than the cache saved on a miss (memory traffic). An answer
is kept the second time its review is seen, so a stream of unrelated Pods only fills a small
set of keys. A cache belongs to one config object and empties itself when the config is
replaced (reload). Only answers the engine gave in full are kept (injected, skipped,
denied), never the onError ones (deadline, bound, internal error), and only while small
(``MAX_ENTRY_BYTES``). A hit is the stored outcome with the new uid put in, so the response,
the per-review log line and the metrics are what a miss would give.

Working out a key costs about 5 % of a review, which a stream of unrelated Pods pays for
nothing. So the cache idles once ``IDLE_AFTER`` lookups in a row missed: it then looks up
one review in ``SAMPLE_EVERY`` on average (the rest skip it), and wakes as soon as one of
those is a review seen before. The gaps between lookups are random: a fixed one could keep
missing a burst whose repeats arrive in step with it (every other review, say). A burst of
identical Pods is noticed within a few times ``SAMPLE_EVERY`` reviews, and all the rest of
it is answered from the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from webhook.config import Config
from webhook.mutate import Outcome

DEFAULT_ENTRIES = 512
MAX_ENTRY_BYTES = 64 * 1024  # the response
SEEN_PER_ENTRY = 4  # keys of reviews seen once, per entry kept
IDLE_AFTER = 256  # lookups missed in a row before the cache idles
SAMPLE_EVERY = 8  # while idle, one review in this many is looked up

Key = tuple[int, int]
CACHEABLE = frozenset({"injected", "skipped", "denied", "shadow"})


def _keyed_blake2b() -> Callable[[bytes], int]:
    secret = os.urandom(16)
    return lambda data: int.from_bytes(hashlib.blake2b(data, digest_size=8, key=secret).digest(), "little")


# Python's bytes hash is keyed with a random secret unless PYTHONHASHSEED pins it (then anyone
# who knows the seed could build two reviews with one key): a keyed BLAKE2b then, 3x slower.
_HASH_RANDOMIZED = os.environ.get("PYTHONHASHSEED", "random") == "random"
_digest: Callable[[bytes], int] = hash if _HASH_RANDOMIZED else _keyed_blake2b()


def review_key(body: Any) -> tuple[Key, str] | None:
    """(the key of the body without its uid, the uid), or None if it cannot be a cached review.

    The key is taken from the body serialised again with the uid blanked: as cheap as blanking
    the uid in the raw bytes (orjson writes 6 KB in about 7 us) and immune to the spellings JSON
    allows for one string (escapes), which the raw bytes are not. The server passes the decoded
    projection (webhook.server.review_decode), so only what the answer depends on is in the key.
    """
    if type(body) is not dict:
        return None
    request = body.get("request")
    if type(request) is not dict:
        return None
    uid = request.get("uid")
    if type(uid) is not str or not uid:
        return None
    try:
        blanked = orjson.dumps({**body, "request": {**request, "uid": ""}})
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: just not cached
        return None
    return (_digest(blanked), len(blanked)), uid


def with_uid(outcome: Outcome, uid: str) -> Outcome:
    """The stored outcome, answering the review with this uid."""
    review = outcome.review
    return dataclasses.replace(outcome, uid=uid, review={**review, "response": {**review["response"], "uid": uid}})


class ReviewCache:
    """LRU of outcomes by review_key, for one config at a time."""

    def __init__(self, entries: int = DEFAULT_ENTRIES, idle_after: int = IDLE_AFTER,
                 sample_every: int = SAMPLE_EVERY, rng: random.Random | None = None) -> None:
        self.entries = entries
        self.idle_after = idle_after
        self.sample_every = sample_every
        self._rng = rng or random.Random()
        self.config: Config | None = None
        self._outcomes: OrderedDict[Key, Outcome] = OrderedDict()
        self._seen: dict[Key, None] = {}
        self._lock = threading.Lock()  # large reviews run in a thread pool
        self._missed_in_a_row = 0
        self._until_lookup = 0  # while idle: reviews to skip before the next lookup

    def __len__(self) -> int:
        return len(self._outcomes)

    @property
    def idle(self) -> bool:
        return self._missed_in_a_row >= self.idle_after

    def consulted(self) -> bool:
        """Whether to look this review up: always while reviews repeat; while the cache idles,
        after a random gap of 0 to ``2 * sample_every - 2`` reviews (one in ``sample_every`` on
        average). Counters shared with pooled reviews may race: that only moves which review
        is looked up."""
        if self._missed_in_a_row < self.idle_after:
            return True
        if self._until_lookup > 0:
            self._until_lookup -= 1
            return False
        self._until_lookup = self._rng.randrange(2 * self.sample_every - 1)
        return True

    def _repeating(self) -> None:
        self._missed_in_a_row = 0

    def get(self, key: Key, config: Config) -> Outcome | None:
        with self._lock:
            if config is not self.config:
                self._reset(config)
            outcome = self._outcomes.get(key)
            if outcome is not None:
                self._outcomes.move_to_end(key)
                self._repeating()
            else:
                self._missed_in_a_row += 1
            return outcome

    def put(self, key: Key, config: Config, outcome: Outcome, size: int) -> None:
        """Keep an answer the engine gave in full (not the Pod or the patch ops: only what a reply
        needs), from the second time its review is seen."""
        if outcome.decision not in CACHEABLE or size > MAX_ENTRY_BYTES or self.entries <= 0:
            return
        with self._lock:
            if config is not self.config:
                self._reset(config)
            if key not in self._seen:
                if len(self._seen) >= SEEN_PER_ENTRY * self.entries:
                    self._seen.clear()
                self._seen[key] = None
                return
            self._repeating()  # seen before: its repeats may be on their way
        slim = Outcome(outcome.review, outcome.uid, outcome.decision, outcome.reason, outcome.message,
                       outcome.profiles, outcome.warnings, kind=outcome.kind, namespace=outcome.namespace,
                       name=outcome.name, operation=outcome.operation, owner=outcome.owner,
                       dry_run=outcome.dry_run)  # not dataclasses.replace: 2x faster
        with self._lock:
            if config is not self.config:  # replaced meanwhile (a pooled review)
                return
            self._outcomes[key] = slim
            self._outcomes.move_to_end(key)
            while len(self._outcomes) > self.entries:
                self._outcomes.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (the config was reloaded)."""
        with self._lock:
            self._reset(None)

    def _reset(self, config: Config | None) -> None:
        """Empty, for answers under ``config`` (called with the lock held); awake, since the new
        config's answers are all to be worked out."""
        self._outcomes.clear()
        self._seen.clear()
        self.config = config
        self._missed_in_a_row = 0
