"""Decode only the parts of an AdmissionReview the review reads (the server's hot path).

A Pod review body is mostly what injection never looks at: managedFields, images, args,
env values, resources, affinity, tolerations. Building all of it as Python objects was the
largest single cost of a review in the server, and every object built evicts something the
next step needs from the CPU caches. msgspec decodes into the TypedDicts below and skips
every other key without building it, so ``review()`` receives plain dicts and lists holding
exactly the fields it reads (``mutate``, ``policy``, ``inject``), all other keys absent. That
holds inside objects too: an owner reference is its kind and identity (Events name the
controller), a volume its name, an env var an empty object (the shape check only asks that it
is one), a probe its handler. inject() only adds, so of
the Pod's own objects the patch carries just that handler (a warm-up startupProbe copies it),
kept whole here; nothing else it sends can be missing from the projection.

The answer is the same as from the whole body (tests/server/test_review_decode.py compares them on
every golden case, every corpus Pod and generated Pods), so the review cache may key on the
projection too: reviews that differ only in fields no answer depends on (a managedFields
timestamp) share an answer. A body these types cannot hold (not an object where one is
expected, invalid JSON or UTF-8) gives None, and the caller parses it whole and answers it as
before. One difference remains, by design: valid JSON that orjson refuses (nested deeper than
1024 levels, a number beyond a float's range) inside fields the review never reads is skipped
and answered, where the whole parse refused it with a 400. Numbers and text the review reads
are typed so that whatever orjson would read otherwise (an integer beyond 64 bits becomes a
float there) goes to the whole parse; a review of the projection that still ends in an
internal error is answered from the whole body (``answers.answer``). Adding a field the review
reads means adding it here. A Pod that carries our status annotation (a reinvocation, rare)
is parsed whole: repair compares the containers and volumes injection added, whole. A body
that holds the annotation's key anywhere is handed to the whole parse before the projection is
decoded (a reinvocation costs one parse, not two; a body that holds the key as other text is
only parsed whole, and answered alike).
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

import msgspec

from webhook.annotations import STATUS

# A number the review reads must be one orjson reads the same: the whole parse turns an
# integer beyond 64 bits into a float, msgspec keeps it exact. Past int64 (msgspec's bounds
# stop there) and for any other type the body is parsed whole; so it is when text the review
# would print (names, kinds) is not a string.
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Nothing(TypedDict, total=False):
    """An object whose contents the review never reads (only that it is one: the shape check)."""


class _Named(TypedDict, total=False):
    name: Any


class _Port(TypedDict, total=False):
    protocol: Any
    containerPort: _Int


class _Mount(TypedDict, total=False):
    mountPath: Any


class _Lifecycle(TypedDict, total=False):
    preStop: Any


class _Probe(TypedDict, total=False):
    exec: Any  # the handlers: a warm-up startupProbe copies the container's own
    httpGet: Any
    tcpSocket: Any
    grpc: Any


class _Owner(TypedDict, total=False):
    kind: str
    apiVersion: Any  # these three and controller: the Pod's controller, for Events
    name: Any
    uid: Any
    controller: Any


class _User(TypedDict, total=False):
    username: str
    groups: list[str]


class _Kind(TypedDict, total=False):
    group: str
    kind: str


class _Container(TypedDict, total=False):
    name: Any
    ports: list[_Port]
    volumeMounts: list[_Mount]
    env: list[_Nothing]
    lifecycle: _Lifecycle
    readinessProbe: _Probe
    livenessProbe: _Probe
    startupProbe: _Probe


class _Spec(TypedDict, total=False):
    containers: list[_Container]
    initContainers: list[_Container]
    ephemeralContainers: list[_Container]
    volumes: list[_Named]
    hostNetwork: Any
    hostPID: Any
    shareProcessNamespace: Any
    terminationGracePeriodSeconds: _Int
    resources: Any
    restartPolicy: Any


class _Metadata(TypedDict, total=False):
    name: str
    generateName: str
    namespace: str
    annotations: Any
    labels: Any
    ownerReferences: list[_Owner]


class _Pod(TypedDict, total=False):
    metadata: _Metadata
    spec: _Spec


class _Request(TypedDict, total=False):
    uid: Any
    kind: _Kind
    namespace: str
    name: str
    operation: str
    subResource: str
    userInfo: _User
    object: _Pod
    dryRun: Any  # no Events for a dry run


class _Review(TypedDict, total=False):
    apiVersion: str
    kind: str
    request: _Request


_DECODER = msgspec.json.Decoder(_Review)
_STATUS_KEY = f'"{STATUS}"'.encode()


def decode_review(raw: bytes) -> dict[str, Any] | None:
    """The projection of the review the engine reads, or None when only a whole parse will do.

    msgspec checks the UTF-8 of the strings it decodes, not of those it skips; a body with
    invalid UTF-8 anywhere is left to the whole parse, which refuses it (a 400, as before)."""
    if _STATUS_KEY in raw:
        return None  # most likely a reinvocation (parsed whole, below); else the whole parse is as right
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        review: dict[str, Any] = _DECODER.decode(raw)
    except (msgspec.MsgspecError, ValueError, RecursionError):  # ValueError: a UnicodeDecodeError
        return None
    annotations = review.get("request", {}).get("object", {}).get("metadata", {}).get("annotations")
    if type(annotations) is dict and STATUS in annotations:
        return None  # a reinvocation: repair compares our containers whole (webhook.repair)
    return review
