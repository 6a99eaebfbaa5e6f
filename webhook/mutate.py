"""AdmissionReview in, AdmissionReview response out (pure; shared by the server and the CLI).

A malformed *request* raises ReviewError (the server answers 400). A Pod we must refuse is a
well-formed response with allowed: false and a status message, which `kubectl` shows.
Everything else is allowed, with a patch when injection adds something, and with warnings
that say what was left out and why.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.config import Config
from webhook.errors import AnnotationError, ReviewError
from webhook.inject import inject
from webhook.patch import Op, make_patch
from webhook.policy import PodContext, decide, owner_kinds

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
MAX_WARNING_CHARS = 120


@dataclass
class Outcome:
    """The response to send, plus what the edges log and count."""

    review: dict[str, Any]
    uid: str
    decision: str  # injected | skipped | denied
    reason: str
    message: str
    profiles: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    patch: list[Op] | None = None
    patched_pod: dict[str, Any] | None = None
    kind: str = ""
    namespace: str = ""
    name: str = ""
    operation: str = ""


def clip_warning(text: str) -> str:
    """kubectl shows warnings one per line; the API server wants them short and printable."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text if len(text) <= MAX_WARNING_CHARS else text[: MAX_WARNING_CHARS - 3] + "..."


def parse_request(review: Any) -> tuple[str, Mapping[str, Any]]:
    """Check the envelope; return (apiVersion, request)."""
    if not isinstance(review, Mapping):
        raise ReviewError("the body must be a JSON object (an AdmissionReview)")
    api_version = review.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ReviewError(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {api_version!r}")
    if review.get("kind") != "AdmissionReview":
        raise ReviewError(f"kind must be AdmissionReview, got {review.get('kind')!r}")
    request = review.get("request")
    if not isinstance(request, Mapping):
        raise ReviewError("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing or not a non-empty string")
    return api_version, request


def _response(api_version: str, uid: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": {"uid": uid, **body}}


def _kind(request: Mapping[str, Any]) -> str:
    kind = request.get("kind")
    if isinstance(kind, Mapping) and kind.get("group", "") == "" and isinstance(kind.get("kind"), str):
        return kind["kind"]
    return str(kind.get("kind", "")) if isinstance(kind, Mapping) else ""


def review(body: Any, config: Config) -> Outcome:
    """Answer one AdmissionReview."""
    api_version, request = parse_request(body)
    uid: str = request["uid"]
    kind = _kind(request)
    operation = str(request.get("operation", ""))
    pod = request.get("object")
    meta = pod.get("metadata") if isinstance(pod, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    namespace = str(request.get("namespace") or meta.get("namespace") or "")
    name = str(meta.get("name") or request.get("name") or (str(meta.get("generateName", "")) + "*" if meta.get("generateName") else ""))

    def skipped(reason: str, message: str, warnings: tuple[str, ...] | list[str] = ()) -> Outcome:
        clipped = [clip_warning(w) for w in warnings]
        body: dict[str, Any] = {"allowed": True, "auditAnnotations": {"decision": "skipped", "reason": message}}
        if clipped:
            body["warnings"] = clipped
        return Outcome(_response(api_version, uid, body), uid, "skipped", reason, message, (), clipped,
                       kind=kind, namespace=namespace, name=name, operation=operation)

    is_pod = kind == "Pod" and (not isinstance(request.get("kind"), Mapping) or request["kind"].get("group", "") == "")
    if not is_pod:
        return skipped("not-a-pod", f"{kind or 'unknown kind'} is not a Pod")
    if operation != "CREATE":
        return skipped("not-create", f"operation {operation or 'unknown'} is not CREATE")
    if request.get("subResource"):
        return skipped("subresource", f"subresource {request['subResource']} is not injected")
    if not isinstance(pod, Mapping):
        raise ReviewError("request.object must be the Pod being created")

    context = PodContext(namespace=namespace, owner_kinds=owner_kinds(pod))
    try:
        decision = decide(pod, context, config)
    except AnnotationError as error:
        message = str(error)
        body = {
            "allowed": False,
            "status": {"status": "Failure", "code": 400, "reason": "BadRequest", "message": message},
            "auditAnnotations": {"decision": "denied", "reason": message},
        }
        return Outcome(_response(api_version, uid, body), uid, "denied", "invalid-annotation", message,
                       kind=kind, namespace=namespace, name=name, operation=operation)
    if not decision.inject or decision.settings is None:
        return skipped(decision.reason, decision.message, decision.warnings)

    result = inject(pod, decision.settings)
    warnings = [*decision.warnings, *result.warnings]
    profiles = tuple(name for name, _ in decision.settings.profiles)
    if not result.changed:
        return skipped("nothing-to-add", "injection would add nothing: everything is already there", warnings)

    ops = make_patch(dict(pod), result.pod)
    clipped = [clip_warning(w) for w in warnings]
    added = result.status["initContainers"] + result.status["containers"]
    body = {
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": base64.b64encode(orjson.dumps(ops)).decode("ascii"),
        "auditAnnotations": {
            "decision": "injected",
            "profiles": ",".join(profiles),
            "containers": ",".join(added) or "none",
        },
    }
    if clipped:
        body["warnings"] = clipped
    return Outcome(_response(api_version, uid, body), uid, "injected", "injected", decision.message, profiles,
                   clipped, ops, result.pod, kind=kind, namespace=namespace, name=name, operation=operation)
