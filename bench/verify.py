"""Fixtures and response verification shared by the micro-benchmark and the load runs.

A response counts only if it is a 200 AdmissionReview answer for the request's uid whose
JSON patch, base64-decoded and applied to the request's Pod with ``jsonpatch``, yields
exactly the Pod our injection engine builds for it. The same check applies to every server,
so kopf's diff-built patch must produce the very same Pod as ours.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import orjson

from webhook.config import Config, load_config_file
from webhook.mutate import review

BENCH_DIR = Path(__file__).resolve().parent
FIXTURE_DIR = BENCH_DIR / "fixtures"
BENCH_CONFIG = BENCH_DIR / "config.yaml"
FIXTURES = ("typical", "big")


class VerificationError(AssertionError):
    """A response that must not be counted."""


@dataclass
class Fixture:
    name: str
    raw: bytes  # compact JSON, as the API server sends it
    body: dict[str, Any]
    uid: str
    pod: dict[str, Any]
    expected_pod: dict[str, Any]  # what applying a correct patch to ``pod`` gives
    _verified: set[bytes] = field(default_factory=set, repr=False)

    @property
    def size(self) -> int:
        return len(self.raw)


def load_config(path: Path = BENCH_CONFIG) -> Config:
    return load_config_file(path)


def load_fixture(name: str, config: Config) -> Fixture:
    body = orjson.loads((FIXTURE_DIR / f"{name}.review.json").read_bytes())
    raw = orjson.dumps(body)
    outcome = review(orjson.loads(raw), config)
    if outcome.decision != "injected" or outcome.patched_pod is None:
        raise VerificationError(f"{name}: the engine did not inject this fixture ({outcome.decision}: {outcome.reason})")
    request = body["request"]
    return Fixture(name, raw, body, request["uid"], request["object"], outcome.patched_pod)


def verify_response(data: bytes | str, fixture: Fixture) -> None:
    """Raise VerificationError unless ``data`` is a correct injected answer for ``fixture``.

    A body already verified (same bytes) is not decoded again: the verdict depends on the
    bytes alone.
    """
    key = data.encode() if isinstance(data, str) else data
    if key in fixture._verified:
        return
    try:
        answer = orjson.loads(key)
    except orjson.JSONDecodeError as error:
        raise VerificationError(f"{fixture.name}: response is not JSON ({error})") from None
    response = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        raise VerificationError(f"{fixture.name}: no response object")
    if answer.get("kind") != "AdmissionReview" or answer.get("apiVersion") != fixture.body["apiVersion"]:
        raise VerificationError(f"{fixture.name}: not an {fixture.body['apiVersion']} AdmissionReview")
    if response.get("uid") != fixture.uid:
        raise VerificationError(f"{fixture.name}: uid {response.get('uid')!r}, expected {fixture.uid!r}")
    if response.get("allowed") is not True:
        raise VerificationError(f"{fixture.name}: not allowed")
    if response.get("patchType") != "JSONPatch":
        raise VerificationError(f"{fixture.name}: patchType {response.get('patchType')!r}")
    try:
        ops = orjson.loads(base64.b64decode(response.get("patch", ""), validate=True))
    except (binascii.Error, ValueError, TypeError) as error:
        raise VerificationError(f"{fixture.name}: patch is not base64 JSON ({error})") from None
    if not isinstance(ops, list) or not ops:
        raise VerificationError(f"{fixture.name}: patch is not a non-empty list of operations")
    try:
        patched = jsonpatch.apply_patch(fixture.pod, ops)  # copies: the fixture stays as it was
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, TypeError) as error:
        raise VerificationError(f"{fixture.name}: patch does not apply ({type(error).__name__}: {error})") from None
    if patched != fixture.expected_pod:
        raise VerificationError(f"{fixture.name}: the patched Pod differs from the injected Pod")
    fixture._verified.add(key)
