"""In-process micro-benchmark of the handler, as ratios to ``orjson.loads`` of the same body.

Per fixture it times, round-robin in the same repeat so machine noise hits them alike:

* ``loads``  -- ``orjson.loads(raw)``: the yardstick (parsing the body is the least any
  handler does);
* ``review`` -- ``webhook.mutate.review(body, config)`` on the parsed body;
* ``answer`` -- ``webhook.server.answers.answer(raw, config)``: the server's whole bytes -> bytes path;
* ``naive``  -- the same policy and injection with the textbook patch: deep-copy the Pod,
  inject into the copy, ``jsonpatch.make_patch(original, injected)``, then serialise.

Each timed function's output is verified (``bench.verify``) before any timing.
Run alone: python -m bench.micro [--iterations N] [--repeats R]
"""

from __future__ import annotations

import argparse
import base64
import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonpatch
import orjson

from bench.verify import FIXTURES, Fixture, load_config, load_fixture, verify_response
from webhook.config import Config
from webhook.inject import inject
from webhook.mutate import review
from webhook.policy import PodContext, decide, owner_kinds
from webhook.server.answers import answer

TIMED = ("loads", "review", "answer", "naive")


def naive_answer(raw: bytes, config: Config) -> bytes:
    """The prototype's approach: deep copy + inject + ``jsonpatch.make_patch`` (happy path only)."""
    body = orjson.loads(raw)
    request = body["request"]
    pod = request["object"]
    user = request.get("userInfo") or {}
    context = PodContext(namespace=request.get("namespace", ""), owner_kinds=owner_kinds(pod),
                         username=str(user.get("username") or ""), groups=tuple(user.get("groups") or ()))
    decision = decide(pod, context, config)
    assert decision.settings is not None
    injected = inject(copy.deepcopy(pod), decision.settings).pod
    ops = jsonpatch.make_patch(pod, injected).patch
    response = {"uid": request["uid"], "allowed": True, "patchType": "JSONPatch",
                "patch": base64.b64encode(orjson.dumps(ops)).decode("ascii")}
    return orjson.dumps({"apiVersion": body["apiVersion"], "kind": "AdmissionReview", "response": response})


def callables(fixture: Fixture, config: Config) -> dict[str, Callable[[], Any]]:
    raw, body = fixture.raw, fixture.body
    return {
        "loads": lambda: orjson.loads(raw),
        "review": lambda: review(body, config),
        "answer": lambda: answer(raw, config),
        "naive": lambda: naive_answer(raw, config),
    }


def check(fixture: Fixture, config: Config) -> None:
    """Every timed path must give a correct answer before it is timed."""
    reply = answer(fixture.raw, config)
    if reply.status != 200:
        raise AssertionError(f"{fixture.name}: answer() gave HTTP {reply.status}")
    verify_response(reply.body, fixture)
    verify_response(orjson.dumps(review(fixture.body, config).review), fixture)
    verify_response(naive_answer(fixture.raw, config), fixture)


@dataclass
class MicroResult:
    fixture: str
    size: int
    micros: dict[str, float]  # median µs per call
    ratios: dict[str, tuple[float, float, float]]  # name -> (median, min, max) of time / loads time


def measure(fixture: Fixture, config: Config, iterations: int, repeats: int) -> MicroResult:
    check(fixture, config)
    funcs = callables(fixture, config)
    for func in funcs.values():  # warm up
        for _ in range(max(1, iterations // 10)):
            func()
    per_call: dict[str, list[float]] = {name: [] for name in TIMED}
    for repeat in range(repeats):
        order = TIMED[repeat % len(TIMED):] + TIMED[:repeat % len(TIMED)]  # rotate the order
        for name in order:
            func = funcs[name]
            start = time.perf_counter()
            for _ in range(iterations):
                func()
            per_call[name].append((time.perf_counter() - start) / iterations * 1e6)
    ratios = {}
    for name in TIMED:
        each = [t / base for t, base in zip(per_call[name], per_call["loads"], strict=True)]
        ratios[name] = (statistics.median(each), min(each), max(each))
    return MicroResult(fixture.name, fixture.size, {n: statistics.median(v) for n, v in per_call.items()}, ratios)


def run_micro(iterations: int = 300, repeats: int = 7, names: tuple[str, ...] = FIXTURES,
              config: Config | None = None) -> list[MicroResult]:
    config = config or load_config()
    results = []
    for name in names:
        fixture = load_fixture(name, config)
        # Big bodies take longer per call: keep each repeat's duration roughly the same.
        scaled = max(1, iterations * 6000 // max(fixture.size, 6000))
        results.append(measure(fixture, config, scaled, repeats))
    return results


def format_micro(results: list[MicroResult]) -> str:
    lines = [
        "| fixture | body | orjson.loads | review | answer (bytes->bytes) | naive (deepcopy+make_patch) "
        "| naive / answer |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        def cell(name: str) -> str:
            med, lo, hi = r.ratios[name]
            return f"{med:.1f}x ({lo:.1f}-{hi:.1f}) = {r.micros[name]:.0f} µs"
        speedup = r.ratios["naive"][0] / r.ratios["answer"][0]
        lines.append(f"| {r.fixture} | {r.size / 1000:.1f} KB | 1x = {r.micros['loads']:.0f} µs | {cell('review')} "
                     f"| {cell('answer')} | {cell('naive')} | {speedup:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.micro")
    parser.add_argument("--iterations", type=int, default=300, help="calls per timing (typical Pod; scaled down for big)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(format_micro(run_micro(args.iterations, args.repeats)))


if __name__ == "__main__":
    main()
