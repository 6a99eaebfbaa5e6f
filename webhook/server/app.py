"""The HTTP surface: POST /mutate on a raw-ASGI fast path, probes and metrics on FastAPI.

/mutate is the hot path the API server waits on for every Pod, so it skips routing,
request models and response validation: read the body once, have ``answers.answer_in_time``
answer it (decode only the fields a review reads, call the pure ``mutate.review`` within the
deadline), send ``orjson.dumps`` bytes, count, log, and tell the observer. Every HTTP status
/mutate can answer is decided in ``precheck`` below and in ``answers``, so the mapping from
problem to status lives in one place.
The probes and /metrics are not hot and keep FastAPI's conveniences.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from webhook.config import Config, override
from webhook.interface import ClusterView, ReviewObserver
from webhook.kubeversion import KubeVersion
from webhook.mutate import NamespaceLookup, Outcome
from webhook.server.answers import Reply, answer, answer_in_time, error_reply
from webhook.server.logging_setup import log_fields
from webhook.server.metrics import Metrics, exposition
from webhook.server.review_cache import ReviewCache

MUTATE_PATH = "/mutate"
DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024  # the API server's own request size limit

review_log = logging.getLogger("webhook.review")

_JSON_HEADERS = ((b"content-type", b"application/json"),)
_CLOSE = (b"connection", b"close")


@dataclass
class ServiceState:
    """What the HTTP surface reads and the server's reload loops and signal handlers change.

    One object per app, handed in explicitly: the config is swapped as a whole reference on
    reload, so a review in progress keeps the config it started with. ``executor`` runs large
    reviews (None: the event loop's default pool).
    """

    config: Config
    metrics: Metrics
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    certificate_loaded: bool = False
    draining: bool = False
    executor: Executor | None = None
    review_cache: ReviewCache | None = None  # None: every review is worked out
    observer: ReviewObserver | None = None  # told of each decision (webhook.interface)
    cluster: ClusterView | None = None  # the cluster-aware features (webhook.interface), when on
    # The config as loaded (``config`` is it with a detected Kubernetes version applied, under
    # kubernetesVersion: auto); None: the same as ``config``.
    loaded_config: Config | None = None

    def not_ready_reasons(self) -> list[str]:
        reasons = []
        if not self.certificate_loaded:
            reasons.append("certificate not loaded")
        if self.draining:
            reasons.append("shutting down")
        if self.cluster is not None:
            reasons += self.cluster.not_ready_reasons()
        return reasons

    def set_config(self, loaded: Config) -> Config:
        """Put a loaded config in force (with the detected version under `auto`); returns it."""
        self.loaded_config = loaded
        detected = self.cluster.kubernetes_version() if self.cluster is not None else None
        self.config = with_version(loaded, detected)
        if self.review_cache is not None:
            self.review_cache.clear()  # it would also notice the new config; this frees it now
        return self.config

    @property
    def namespaces(self) -> NamespaceLookup | None:
        return self.cluster.namespace_defaults if self.cluster is not None else None


def with_version(config: Config, detected: KubeVersion | None) -> Config:
    """Under kubernetesVersion: auto, the config with the detected version (or the fallback)."""
    if not config.auto_version:
        return config
    return override(config, "kubernetesVersion", str(detected or config.kube_version), "the detected version")


class ClientDisconnected(Exception):
    """The client went away before sending its whole body; there is nobody to answer."""


def too_large(limit: int) -> Reply:
    # Close the connection: the rest of an oversized body may still be on its way.
    return error_reply(413, "payload-too-large", f"request body exceeds {limit} bytes",
                       headers=((b"connection", b"close"),))


def precheck(method: str, headers: list[tuple[bytes, bytes]], limit: int) -> Reply | None:
    """Refuse what can be refused before reading the body (405, 415, 413, 400); None means go on.

    Such an answer leaves the body unread, and the connection closes after it if the body is
    still arriving then (webhook.server.connections): so it says ``Connection: close`` whenever
    the request has a body, and a client never sends its next request into a closing connection."""
    content_type = b""
    content_length: bytes | None = None
    chunked = False
    for name, value in headers:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            content_length = value
        elif name == b"transfer-encoding":
            chunked = True
    closing = ((b"connection", b"close"),) if chunked or content_length not in (None, b"0") else ()
    if method != "POST":
        return error_reply(405, "method-not-allowed", f"method {method} not allowed on {MUTATE_PATH}; use POST",
                           headers=((b"allow", b"POST"), *closing))
    media_type = content_type.split(b";", 1)[0].strip().lower()
    if media_type != b"application/json":
        shown = content_type.decode("latin-1") or "none"
        return error_reply(415, "unsupported-media-type", f"Content-Type must be application/json, got {shown}",
                           headers=closing)
    if content_length is not None:
        if not content_length.strip().isdigit():
            return error_reply(400, "bad-content-length", "Content-Length is not a number", headers=(_CLOSE,))
        if int(content_length) > limit:
            return too_large(limit)
    return None


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes ``limit`` (counts streamed bytes: no Content-Length needed)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False) and len(body) <= limit:
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False) and size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
    if size > limit:
        await _discard(receive, message, limit)
        return None
    return b"".join(chunks)


async def _discard(receive: Receive, message: Message, budget: int) -> None:
    """Swallow up to ``budget`` more bytes, so closing the socket sends the 413 rather than a reset."""
    while message.get("more_body", False) and budget > 0:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        budget -= len(message.get("body", b""))


async def send_reply(send: Send, reply: Reply, close: bool = False) -> None:
    """``close``: ask the client to reconnect (while draining, so it lands on another replica)."""
    headers = [*_JSON_HEADERS, (b"content-length", str(len(reply.body)).encode()), *reply.headers]
    if close and _CLOSE not in headers:
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


def review_fields(reply: Reply, seconds: float) -> dict[str, Any]:
    """The per-review log line's fields."""
    fields: dict[str, Any] = {"uid": reply.uid, "status": reply.status}
    outcome = reply.outcome
    if outcome is not None:
        fields.update(kind=outcome.kind, namespace=outcome.namespace, name=outcome.name,
                      operation=outcome.operation, profiles=list(outcome.profiles),
                      warnings=len(outcome.warnings))
    fields.update(decision=reply.decision, reason=reply.reason, duration_ms=round(seconds * 1000, 3))
    if reply.error is not None:
        fields["error"] = reply.error
    return fields


def count(metrics: Metrics, reply: Reply, seconds: float) -> None:
    """Count and time one /mutate request (before the reply leaves, so a scrape that follows sees it)."""
    metrics.count_review(reply.decision, reply.reason)
    if reply.cache == "hit" or reply.cache == "miss":  # a skip is not counted: one write less per review
        metrics.count_cache(reply.cache)
    metrics.review_duration.observe(seconds)


def log_review(reply: Reply, seconds: float) -> None:
    """The one structured line per review, written after the reply is handed over (its bytes leave
    when this turn of the event loop ends, see webhook.server.coalescing: a line is formatted first, a
    few microseconds; buffered, see webhook.server.logging_setup). Logging it from a callback of its
    own, after the bytes left, measured 15 us more per request and a p99 five times worse."""
    if reply.status >= 500:
        review_log.error("review failed", exc_info=reply.exc, extra={"fields": review_fields(reply, seconds)})
        return
    # A 4xx, or a 200 that onError answered (bound exceeded, engine bug), is worth a warning.
    level = logging.INFO if reply.status == 200 and reply.decision != "error" else logging.WARNING
    if review_log.isEnabledFor(level):
        log_fields(review_log, level, "review", review_fields(reply, seconds))


async def serve_mutate(scope: Scope, receive: Receive, send: Send, state: ServiceState) -> None:
    """POST /mutate, straight on ASGI."""
    started = time.perf_counter()
    limit = state.max_body_bytes
    reply = precheck(scope["method"], scope["headers"], limit)
    if reply is None:
        try:
            raw = await read_body(receive, limit)
        except ClientDisconnected:
            return
        if raw is None:
            reply = too_large(limit)
        else:
            cache, namespaces = state.review_cache, state.namespaces
            judge = answer if cache is None and namespaces is None else \
                lambda raw, config: answer(raw, config, cache, namespaces)
            reply = await answer_in_time(raw, state.config, started, state.executor, judge)
    seconds = time.perf_counter() - started
    count(state.metrics, reply, seconds)
    await send_reply(send, reply, close=state.draining)
    log_review(reply, seconds)
    if state.observer is not None and reply.outcome is not None:
        tell(state.observer, reply.outcome)


def tell(observer: ReviewObserver, outcome: Outcome) -> None:
    """Hand the decision to the observer; its failure is logged and changes nothing else."""
    try:
        observer.reviewed(outcome)
    except Exception:  # noqa: BLE001 - the reply has left; an observer's bug must not cost the connection
        review_log.exception("review observer failed", extra={"fields": {"uid": outcome.uid}})


def create_routes(state: ServiceState) -> FastAPI:
    """Probes and metrics; errors (404, 405) answered as JSON like /mutate's."""
    api = FastAPI(title="sidecar-injector", docs_url=None, redoc_url=None, openapi_url=None)
    api.state.service = state

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the event loop answers. Nothing else, so a slow dependency never restarts us."""
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready: config and certificate loaded and not shutting down (drain takes us out of Endpoints)."""
        reasons = request.app.state.service.not_ready_reasons()
        if reasons:
            return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    @api.get("/metrics")
    async def metrics(request: Request) -> Response:
        body, content_type = exposition(request.app.state.service.metrics)
        return Response(body, media_type=content_type)

    return api


class WebhookApp:
    """The ASGI app: /mutate goes to ``serve_mutate`` before any routing, the rest to FastAPI."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state
        self.routes = create_routes(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == MUTATE_PATH:
            await serve_mutate(scope, receive, send, self.state)
        else:
            await self.routes(scope, receive, send)


def create_app(state: ServiceState) -> WebhookApp:
    return WebhookApp(state)
