"""AdmissionReview in, AdmissionReview response out (pure; shared by the server and the CLI).

A malformed *request* raises ReviewError (the server answers 400). A Pod we must refuse is a
well-formed response with allowed: false and a status message, which `kubectl` shows.
Everything else is allowed, with a patch when injection adds something, and with warnings
that say what was left out and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pybase64

from webhook.config import Config
from webhook.errors import Denied, LimitExceeded, ReviewError, clip, problems_of, shown
from webhook.inject import inject
from webhook.jsontree import is_map
from webhook.patch import Op
from webhook.policy import PodContext, decide, owner_kinds
from webhook.repair import repair, restored_audit
from webhook.shadow import summary as shadow_summary
from webhook.uninject import read_status

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
MAX_WARNING_CHARS = 119  # "under 120 characters": what kubectl prints on one line


@dataclass
class Outcome:
    """The response to send, plus what the edges log and count."""

    review: dict[str, Any]
    uid: str
    decision: str  # injected | skipped | denied | error | shadow
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
    problems: tuple[str, ...] = ()  # a denial's every reason, one message each (its message names them all)
    # For Events (webhook.cluster.events): the Pod's controller (apiVersion, kind, name, uid), and
    # whether the request is a dry run (which must have no side effects).
    owner: tuple[str, str, str, str] | None = None
    dry_run: bool = False


# The namespace defaults of a namespace: (its annotations, or None when not known; whether they
# are still loading). webhook.cluster.namespaces provides them; offline callers pass none.
NamespaceLookup = Callable[[str], tuple[Mapping[str, str] | None, bool]]


def clip_warning(text: str) -> str:
    """kubectl shows warnings one per line; the API server wants them short and printable."""
    return clip(text, MAX_WARNING_CHARS)


def parse_request(review: Any) -> tuple[str, Mapping[str, Any]]:
    """Check the envelope; return (apiVersion, request)."""
    if not is_map(review):
        raise ReviewError("the body must be a JSON object (an AdmissionReview)")
    api_version = review.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ReviewError(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {shown(api_version)}")
    if review.get("kind") != "AdmissionReview":
        raise ReviewError(f"kind must be AdmissionReview, got {shown(review.get('kind'))}")
    request = review.get("request")
    if not is_map(request):
        raise ReviewError("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing or not a non-empty string")
    return api_version, request


def _response(api_version: str, uid: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": {"uid": uid, **body}}


def _kind(request: Mapping[str, Any]) -> str:
    """`Pod` for core Pods; other groups are spelled out (`example.com/Pod` is not a Pod)."""
    kind = request.get("kind")
    if not is_map(kind):
        return ""
    name = str(kind.get("kind") or "")
    group = kind.get("group") or ""
    return f"{group}/{name}" if group else name


def on_error(body: Any, config: Config, reason: str, message: str) -> Outcome:
    """The answer when a review cannot be answered properly (deadline, bound, bug).

    `allow` admits the Pod without its sidecar and says so in a warning (right for a log
    shipper: availability first); `deny` refuses it (right for a security sidecar: no Pod
    without it). The body must already have passed parse_request.
    """
    api_version, request = parse_request(body)
    uid: str = request["uid"]
    text = f"sidecar not injected: {message}"
    if config.onError == "deny":
        response = {
            "allowed": False,
            "status": {"status": "Failure", "code": 500, "reason": "InternalError", "message": text},
            "auditAnnotations": {"decision": "error", "reason": message},
        }
    else:
        response = {"allowed": True, "warnings": [clip_warning(text)],
                    "auditAnnotations": {"decision": "error", "reason": message}}
    kind, namespace, name, operation = describe(request)
    return Outcome(_response(api_version, uid, response), uid, "error", reason, text,
                   warnings=list(response.get("warnings", [])), kind=kind, namespace=namespace, name=name,
                   operation=operation)


def describe(request: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(kind, namespace, name, operation) for logs: controllers send generateName only and
    may leave metadata.namespace empty, so fall back to the request's."""
    obj = request.get("object")
    meta = obj.get("metadata") if is_map(obj) else None
    meta = meta if is_map(meta) else {}
    namespace = str(request.get("namespace") or meta.get("namespace") or "")
    name = meta.get("name") or request.get("name")
    if not name and meta.get("generateName"):
        name = f"{meta['generateName']}*"
    return _kind(request), namespace, str(name or ""), str(request.get("operation", ""))


def review(body: Any, config: Config, fresh_copies: bool = True, namespaces: NamespaceLookup | None = None) -> Outcome:
    """Answer one AdmissionReview; onError answers for bounds exceeded and internal bugs.

    ``fresh_copies=False``: the Outcome's ``patch`` and ``patched_pod`` may share objects with
    the config's prepared plan (see inject()); for a caller that only sends ``review``.
    ``namespaces``: the namespace's annotations, defaults for its Pods."""
    api_version, request = parse_request(body)
    try:
        outcome = _review(api_version, request, config, fresh_copies, namespaces)
    except LimitExceeded as error:
        outcome = on_error(body, config, error.reason, str(error))
    except (ReviewError, RecursionError):
        raise
    except Exception as error:  # a bug must not cost the Pod more than the policy says
        outcome = on_error(body, config, "internal-error", f"internal error ({type(error).__name__})")
    outcome.owner = controller_of(request.get("object"))
    outcome.dry_run = request.get("dryRun") is True
    return outcome


def controller_of(pod: Any) -> tuple[str, str, str, str] | None:
    """(apiVersion, kind, name, uid) of the Pod's controlling owner (a ReplicaSet, a Job...)."""
    meta = pod.get("metadata") if is_map(pod) else None
    owners = meta.get("ownerReferences") if is_map(meta) else None
    for owner in owners if isinstance(owners, list) else ():
        if is_map(owner) and owner.get("controller") is True:
            fields = (owner.get("apiVersion"), owner.get("kind"), owner.get("name"), owner.get("uid"))
            if all(isinstance(value, str) and value for value in fields):
                return fields  # type: ignore[return-value]
    return None


def _review(api_version: str, request: Mapping[str, Any], config: Config, fresh_copies: bool,
            namespaces: NamespaceLookup | None) -> Outcome:
    uid: str = request["uid"]
    kind, namespace, name, operation = described = describe(request)
    pod = request.get("object")

    def skipped(reason: str, message: str, warnings: tuple[str, ...] | list[str] = ()) -> Outcome:
        clipped = [clip_warning(w) for w in warnings]
        body: dict[str, Any] = {"allowed": True, "auditAnnotations": {"decision": "skipped", "reason": message}}
        if clipped:
            body["warnings"] = clipped
        return Outcome(_response(api_version, uid, body), uid, "skipped", reason, message, (), clipped,
                       kind=kind, namespace=namespace, name=name, operation=operation)

    if kind != "Pod":
        return skipped("not-a-pod", f"{kind or 'an unknown kind'} is not a core/v1 Pod")
    if operation != "CREATE":
        return skipped("not-create", f"operation {operation if operation not in ('', 'None') else 'unknown'} is not CREATE")
    if request.get("subResource"):
        return skipped("subresource", f"subresource {request['subResource']} is not injected")
    if not is_map(pod):
        raise ReviewError("request.object must be the Pod being created")

    user = request.get("userInfo")
    user = user if is_map(user) else {}
    groups = user.get("groups")
    defaults, pending = namespaces(namespace) if namespaces is not None else (None, False)
    context = PodContext(
        namespace=namespace,
        owner_kinds=owner_kinds(pod),
        username=str(user.get("username") or ""),  # missing: an unknown user, checked like any other
        groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        namespace_annotations=defaults,
        namespace_pending=pending,
    )
    try:
        decision = decide(pod, context, config)
    except Denied as error:
        message = str(error)
        body = {
            "allowed": False,
            "status": {"status": "Failure", "code": error.code, "reason": error.status_reason, "message": message},
            "auditAnnotations": {"decision": "denied", "reason": message},
        }
        return Outcome(_response(api_version, uid, body), uid, "denied", error.reason, message,
                       kind=kind, namespace=namespace, name=name, operation=operation, problems=problems_of(error))
    if decision.reason == "already-injected":
        fixed = repair(pod, context, config)
        if not fixed.ops:
            outcome = skipped(decision.reason, decision.message, [*decision.warnings, *fixed.warnings])
            outcome.review["response"]["auditAnnotations"].update(restored_audit(fixed))
            return outcome
        assert fixed.pod is not None
        profiles = tuple((read_status(pod) or {}).get("profiles", ()))
        audit = {"decision": "injected", "reason": "repaired", **restored_audit(fixed)}
        return _patched(api_version, uid, described, fixed.ops, fixed.pod, fixed.warnings, audit, config, "repaired",
                        f"added again what another webhook removed: {', '.join(fixed.restored)}", profiles)
    if decision.reason == "shadow" and decision.shadow is not None:
        # Decided in full, patched not at all, and no warning reaches the user (webhook.shadow).
        audit = {"decision": "shadow", "profiles": ",".join(decision.shadow.profiles),
                 "shadow": shadow_summary(pod, decision.shadow)}
        return Outcome(_response(api_version, uid, {"allowed": True, "auditAnnotations": audit}), uid, "shadow",
                       "shadow", decision.message, decision.shadow.profiles, kind=kind, namespace=namespace,
                       name=name, operation=operation)
    if not decision.inject or decision.settings is None:
        return skipped(decision.reason, decision.message, decision.warnings)

    result = inject(pod, decision.settings, fresh_copies)
    warnings = [*decision.warnings, *result.warnings]
    profiles = tuple(name for name, _ in decision.settings.profiles)
    shadowed = {"shadow": shadow_summary(pod, decision.shadow, result.status)} if decision.shadow else {}
    if not result.changed:
        outcome = skipped("nothing-to-add", "injection would add nothing: everything is already there", warnings)
        outcome.review["response"]["auditAnnotations"].update(shadowed)
        return outcome

    added = result.status["initContainers"] + result.status["containers"]
    audit = {"decision": "injected", "profiles": ",".join(profiles), "containers": ",".join(added) or "none",
             **shadowed}
    return _patched(api_version, uid, described, result.ops, result.pod, warnings, audit, config, "injected",
                    decision.message, profiles)


def _patched(api_version: str, uid: str, described: tuple[str, str, str, str], ops: list[Op], pod: dict[str, Any],
             warnings: list[str], audit: dict[str, str], config: Config, reason: str, message: str,
             profiles: tuple[str, ...]) -> Outcome:
    """The allowed answer that carries a patch, bounded by ``limits.maxPatchBytes``."""
    patch = orjson.dumps(ops)
    if len(patch) > config.limits.maxPatchBytes:
        raise LimitExceeded(
            "patch-too-large", f"the patch would be {len(patch)} bytes, over the limit of {config.limits.maxPatchBytes}"
        )
    clipped = [clip_warning(w) for w in warnings]
    body: dict[str, Any] = {
        "allowed": True,
        "patchType": "JSONPatch",
        "patch": pybase64.b64encode_as_string(patch),  # SIMD: binascii took 4 us of a review
        "auditAnnotations": audit,
    }
    if clipped:
        body["warnings"] = clipped
    kind, namespace, name, operation = described
    return Outcome(_response(api_version, uid, body), uid, "injected", reason, message, profiles,
                   clipped, ops, pod, kind=kind, namespace=namespace, name=name, operation=operation)
