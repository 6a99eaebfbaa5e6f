"""Shared test helpers for the injection engine: golden cases, patch checks, user-data checks."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonpatch
import orjson
import yaml

from webhook.config import Config, load_config_file, parse_config
from webhook.mutate import Outcome
from webhook.server.answers import answer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASE_CONFIG = FIXTURES / "config.yaml"

# Where a patch may write: everything injection does, and nothing else.
ALLOWED_OP_PREFIXES = (
    "/metadata/annotations",
    "/spec/initContainers",
    "/spec/containers",
    "/spec/volumes",
    "/spec/shareProcessNamespace",
    "/spec/terminationGracePeriodSeconds",
)


def case_names() -> list[str]:
    return sorted(p.name.removesuffix(".review.json") for p in FIXTURES.glob("*.review.json"))


def case_config(case: str) -> Config:
    """The base golden config, with the case's `<case>.config.yaml` keys laid over it."""
    override = FIXTURES / f"{case}.config.yaml"
    if not override.exists():
        return load_config_file(BASE_CONFIG)
    data = yaml.safe_load(BASE_CONFIG.read_text()) | (yaml.safe_load(override.read_text()) or {})
    return parse_config(data, str(override))


def load_review(case: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{case}.review.json").read_text())


def pod_review(pod: Mapping[str, Any], uid: str = "uid-1", namespace: str = "shop") -> dict[str, Any]:
    """The smallest AdmissionReview the API server sends for a Pod CREATE."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": "CREATE",
            "namespace": namespace,
            "object": pod,
        },
    }


def server_answer_differs(body: Mapping[str, Any], config: Config, outcome: Outcome) -> bool:
    """Whether the server's answer to these bytes (decoded to the fields the review reads,
    webhook.server.review_decode) differs from ``outcome``, the review of the whole body."""
    reply = answer(orjson.dumps(body), config)
    return reply.status != 200 or reply.body != orjson.dumps(outcome.review)


def decoded_patch(outcome: Outcome) -> list[dict[str, Any]] | None:
    encoded = outcome.review["response"].get("patch")
    return None if encoded is None else json.loads(base64.b64decode(encoded))


def apply(pod: Mapping[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    return jsonpatch.apply_patch(pod, ops, in_place=False)


def op_paths_allowed(ops: list[dict[str, Any]]) -> list[str]:
    """Ops outside the allow-list, and ops that remove (injection never removes)."""
    bad = []
    for op in ops:
        if op["op"] == "remove" or not op["path"].startswith(ALLOWED_OP_PREFIXES):
            bad.append(f"{op['op']} {op['path']}")
        if op["op"] == "replace" and op["path"] != "/spec/terminationGracePeriodSeconds":
            bad.append(f"replace {op['path']}")
    return bad


def _same(old: Any, new: Any) -> bool:
    if old == new:
        return True
    return isinstance(old, dict) and isinstance(new, dict) and "name" in old and old.get("name") == new.get("name")


def lost_user_data(original: Any, patched: Any, path: str = "") -> Iterator[str]:
    """Every value of the original must still be in the patched Pod, unchanged.

    Lists may gain items (in any position) but keep the original ones in order; the only
    value that may change is a terminationGracePeriodSeconds that was raised.
    """
    if isinstance(original, dict) and isinstance(patched, dict):
        for key, value in original.items():
            if key not in patched:
                yield f"{path}/{key} removed"
            else:
                yield from lost_user_data(value, patched[key], f"{path}/{key}")
    elif isinstance(original, list) and isinstance(patched, list):
        j = 0
        for i, item in enumerate(original):
            while j < len(patched) and not _same(item, patched[j]):
                j += 1
            if j == len(patched):
                yield f"{path}/{i} lost or reordered"
                return
            yield from lost_user_data(item, patched[j], f"{path}/{i}")
            j += 1
    elif path == "/spec/terminationGracePeriodSeconds":
        if not (isinstance(patched, int) and patched >= original):
            yield f"{path} lowered from {original} to {patched}"
    elif type(original) is not type(patched) or original != patched:
        yield f"{path} changed from {original!r} to {patched!r}"


def summary(outcome: Outcome) -> dict[str, Any]:
    """What a golden file records: the decision as the API server sees it, and the Pod."""
    response = outcome.review["response"]
    result: dict[str, Any] = {
        "apiVersion": outcome.review["apiVersion"],
        "uid": response["uid"],
        "allowed": response["allowed"],
        "decision": outcome.decision,
        "reason": outcome.reason,
    }
    if "status" in response:
        result["status"] = response["status"]
    result["warnings"] = response.get("warnings", [])
    result["auditAnnotations"] = response.get("auditAnnotations", {})
    result["patchedPod"] = outcome.patched_pod
    return result
