"""Reliability: the review deadline, resource bounds, slow clients, overload and shutdown.

Unit tests for the deadline runner, then real server processes over real TLS (conftest), then
the manifest's shutdown arithmetic and a short soak with faults (scripts/soak.py).
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from webhook.config import Config, load_config_text, parse_config
from webhook.errors import ConfigError
from webhook.server import answers
from webhook.server.answers import DEADLINE_REASON, Reply, answer, answer_in_time
from webhook.server.deadline import INLINE_MAX_BYTES, run_within
from webhook.server.options import ServeOptions, load_config
from webhook.server.runner import GRACEFUL_SHUTDOWN_SECONDS
from webhook.tools.cli import build_parser

from conftest import GOLDEN_CONFIG, REPO, Server, load_review, ssl_context_from

JSON = {"Content-Type": "application/json"}
MANIFESTS = REPO / "manifests" / "base"


# --- helpers ------------------------------------------------------------------------------------


def golden_config(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(GOLDEN_CONFIG.read_text())
    data.update(changes)
    return data


def config_file(tmp_path: Path, **changes: Any) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(golden_config(**changes)))
    return path


def post(client: httpx.Client, review: dict[str, Any]) -> httpx.Response:
    return client.post("/mutate", content=json.dumps(review), headers=JSON)


def metric(client: httpx.Client, labels: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("sidecar_injector_reviews_total" + labels + " "):
            return float(line.split()[1])
    return 0.0


def padded(review: dict[str, Any], size: int) -> dict[str, Any]:
    """The review with an annotation that makes its body at least ``size`` bytes."""
    review = copy.deepcopy(review)
    review["request"]["object"]["metadata"]["annotations"]["example.com/pad"] = "x" * size
    return review


def with_containers(review: dict[str, Any], count: int) -> dict[str, Any]:
    review = copy.deepcopy(review)
    spec = review["request"]["object"]["spec"]
    spec["containers"] = [{**spec["containers"][0], "name": f"app{i}", "ports": []} for i in range(count)]
    return review


@contextmanager
def tls_socket(server: Server, timeout: float = 10) -> Iterator[ssl.SSLSocket]:
    context = ssl_context_from(server.ca_file)
    with (socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as raw,
          context.wrap_socket(raw, server_hostname="127.0.0.1") as tls):
        yield tls


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (an abort or a reset counts as closed)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    return data


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


def refuses_connections(server: Server) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1):
            return False
    except OSError:
        return True


# --- the deadline, unit ---------------------------------------------------------------------------


def test_small_work_runs_inline_on_the_event_loop_thread() -> None:
    async def main() -> tuple[int | None, int]:
        return await run_within(threading.get_ident, 100, 1.0, time.perf_counter()), threading.get_ident()

    ran_on, loop_thread = asyncio.run(main())
    assert ran_on == loop_thread  # no thread hop on the fast path


def test_small_work_that_overruns_is_late() -> None:
    def slow() -> str:
        time.sleep(0.05)
        return "too late"

    assert asyncio.run(run_within(slow, 100, 0.01, time.perf_counter())) is None
    assert asyncio.run(run_within(lambda: "in time", 100, 1.0, time.perf_counter())) == "in time"


def test_large_work_runs_in_the_pool_and_is_cut_off_at_the_deadline() -> None:
    release = threading.Event()
    threads: list[int] = []

    def slow() -> str:
        threads.append(threading.get_ident())
        release.wait(10)
        return "too late"

    async def main() -> tuple[str | None, float]:
        started = time.perf_counter()
        result = await run_within(slow, INLINE_MAX_BYTES + 1, 0.2, started, pool)
        return result, time.perf_counter() - started

    with ThreadPoolExecutor(1) as pool:
        try:
            result, elapsed = asyncio.run(main())
        finally:
            release.set()
    assert result is None
    assert 0.18 <= elapsed < 1.0, elapsed  # answered at the deadline, not when the work ended
    assert threads and threads[0] != threading.get_ident()


def test_time_spent_before_the_work_counts() -> None:
    ran: list[bool] = []
    started = time.perf_counter() - 5  # e.g. a slow body upload
    assert asyncio.run(run_within(lambda: ran.append(True), INLINE_MAX_BYTES + 1, 1.0, started)) is None
    assert not ran  # the pool is not even asked


def _deadline_config(on_error: str) -> Config:
    return parse_config(golden_config(deadlineSeconds=0.1, onError=on_error))


def _slow_judge(seconds: float) -> Callable[[bytes, Config], Reply]:
    def judge(raw: bytes, config: Config) -> Reply:
        time.sleep(seconds)
        return answer(raw, config)

    return judge


@pytest.mark.parametrize("size", [0, INLINE_MAX_BYTES], ids=["inline", "pooled"])
def test_a_late_review_is_answered_by_on_error_allow(size: int) -> None:
    review = padded(load_review("pod-basic"), size)
    raw = json.dumps(review).encode()

    async def main() -> tuple[Reply, float]:
        started = time.perf_counter()
        reply = await answer_in_time(raw, _deadline_config("allow"), started, judge=_slow_judge(0.5))
        return reply, time.perf_counter() - started

    reply, elapsed = asyncio.run(main())
    assert elapsed < (0.4 if size else 1.0), elapsed  # pooled: not held until the review ends
    assert (reply.status, reply.decision, reply.reason) == (200, "error", DEADLINE_REASON)
    response = json.loads(reply.body)["response"]
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] == ["sidecar not injected: the review did not finish within the 0.1s deadline"]


def test_a_late_review_is_answered_by_on_error_deny() -> None:
    raw = json.dumps(load_review("pod-basic")).encode()
    reply = asyncio.run(answer_in_time(raw, _deadline_config("deny"), time.perf_counter(), judge=_slow_judge(0.2)))
    response = json.loads(reply.body)["response"]
    assert response["allowed"] is False
    assert response["status"]["message"] == "sidecar not injected: the review did not finish within the 0.1s deadline"
    assert reply.reason == DEADLINE_REASON


def test_a_late_bad_request_is_still_a_400() -> None:
    reply = asyncio.run(answer_in_time(b'{"kind": "AdmissionReview"}', _deadline_config("allow"),
                                       time.perf_counter(), judge=_slow_judge(0.2)))
    assert reply.status == 400 and reply.reason == "invalid-review"


def test_a_review_in_time_is_the_review() -> None:
    raw = json.dumps(load_review("pod-basic")).encode()
    reply = asyncio.run(answer_in_time(raw, _deadline_config("deny"), time.perf_counter()))
    assert reply.decision == "injected"


def test_a_recursion_error_from_the_core_is_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    """The core leaves RecursionError (a pathologically nested request) to the edge: never a 500."""
    def recurse(body: Any, config: Config, **options: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(answers, "review", recurse)
    reply = answer(json.dumps(load_review("pod-basic")).encode(), parse_config(golden_config()))
    assert (reply.status, reply.reason) == (400, "too-deeply-nested")
    assert json.loads(reply.body) == {"error": "request body nests too deeply to review"}


def test_deadline_seconds_flag_and_env_override_the_config(tmp_path: Path) -> None:
    path = config_file(tmp_path, deadlineSeconds=1.5)
    assert load_config(ServeOptions(config_file=path)).deadlineSeconds == 1.5
    assert load_config(ServeOptions(config_file=path, deadline_seconds=0.25)).deadlineSeconds == 0.25
    assert build_parser({"SIDECAR_INJECTOR_DEADLINE_SECONDS": "0.75"}).parse_args(["serve"]).deadline_seconds == 0.75
    assert build_parser({}).parse_args(["serve"]).deadline_seconds is None  # the config decides
    with pytest.raises(ConfigError, match="--deadline-seconds"):
        load_config(ServeOptions(config_file=path, deadline_seconds=31))


def test_bound_flags_have_env_vars_and_defaults() -> None:
    defaults = build_parser({}).parse_args(["serve"])
    assert (defaults.header_timeout, defaults.max_connections, defaults.health_port) == (10.0, 256, None)
    environ = {"SIDECAR_INJECTOR_HEADER_TIMEOUT": "3", "SIDECAR_INJECTOR_MAX_CONNECTIONS": "64",
               "SIDECAR_INJECTOR_HEALTH_PORT": "8080"}
    args = build_parser(environ).parse_args(["serve"])
    assert (args.header_timeout, args.max_connections, args.health_port) == (3.0, 64, 8080)
    for bad in (["--header-timeout", "0"], ["--max-connections", "0"], ["--deadline-seconds", "-1"]):
        with pytest.raises(SystemExit):
            build_parser({}).parse_args(["serve", *bad])


# --- the deadline and the bounds, end to end -------------------------------------------------------


@pytest.mark.parametrize("on_error", ["allow", "deny"])
def test_deadline_exceeded_end_to_end(tmp_path: Path, server_factory: Callable[..., Server], on_error: str) -> None:
    # 1 microsecond: no review can make it, so every one is answered by onError.
    server = server_factory("--deadline-seconds", "0.000001", config=config_file(tmp_path, onError=on_error))
    client = server.client()
    review = load_review("pod-basic")
    response = post(client, review)
    assert response.status_code == 200
    answer_ = response.json()["response"]
    assert answer_["uid"] == review["request"]["uid"]
    assert "patch" not in answer_
    if on_error == "allow":
        assert answer_["allowed"] is True
        assert answer_["warnings"] == ["sidecar not injected: the review did not finish within the 1e-06s deadline"]
    else:
        assert answer_["allowed"] is False
        assert "did not finish within" in answer_["status"]["message"]
    assert metric(client, '{decision="error",reason="deadline-exceeded"}') == 1


def test_resource_bounds_end_to_end(tmp_path: Path, server_factory: Callable[..., Server]) -> None:
    config = config_file(tmp_path, limits={"maxContainers": 3, "maxPatchBytes": 1024})
    server = server_factory("--max-body-bytes", "8192", config=config)
    client = server.client()
    review = load_review("pod-basic")

    many = post(client, with_containers(review, 4)).json()["response"]
    assert many["allowed"] is True and "patch" not in many
    assert many["warnings"] == ["sidecar not injected: the Pod has 4 containers, over the limit of 3"]

    big_patch = post(client, review).json()["response"]  # the proxy profile's patch is over 1 KiB
    assert big_patch["allowed"] is True and "patch" not in big_patch
    assert big_patch["warnings"][0].startswith("sidecar not injected: the patch would be ")

    too_large = post(client, padded(review, 8192))
    assert too_large.status_code == 413 and "exceeds 8192 bytes" in too_large.json()["error"]

    assert metric(client, '{decision="error",reason="too-many-containers"}') == 1
    assert metric(client, '{decision="error",reason="patch-too-large"}') == 1
    assert metric(client, '{decision="error",reason="payload-too-large"}') == 1


def _proc_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def test_endless_request_head_is_cut_off_at_64_kib(server: Server) -> None:
    """uvicorn bounds the head for its h11 parser only; with httptools this is ours to do."""
    if not Path(f"/proc/{server.process.pid}/status").exists():
        pytest.skip("needs /proc")
    peak_before = _proc_kib(server.process.pid, "VmHWM")
    with tls_socket(server) as tls:
        tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        try:
            for _ in range(512):  # 32 MiB, if the server kept reading
                tls.sendall(b"a" * 65536)
        except (ConnectionError, ssl.SSLError):
            pass
        answered = read_until_closed(tls)
    assert answered.startswith(b"HTTP/1.1 431 ")
    assert json.loads(answered.partition(b"\r\n\r\n")[2]) == {"error": "request head exceeds 65536 bytes"}
    assert _proc_kib(server.process.pid, "VmHWM") - peak_before < 16 * 1024  # KiB; unbounded, it grew by ~3x sent


def test_unparsable_http_gets_a_json_400(server: Server) -> None:
    with tls_socket(server) as tls:
        tls.sendall(b"\x00\x01GARBAGE / HTTP/1.1\r\n\r\n")
        answered = read_until_closed(tls)
    assert answered.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in answered
    assert "error" in json.loads(answered.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("head", [
    b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n",
    b"POST /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n",
], ids=["415", "404"])
def test_early_answer_closes_the_connection(server: Server, head: bytes) -> None:
    """An error answered before the body arrived: the rest of that body is not a next request."""
    with tls_socket(server, timeout=5) as tls:
        tls.sendall(head + b"x" * 100)
        started = time.monotonic()
        answered = read_until_closed(tls)
        assert time.monotonic() - started < 3  # closed, not left waiting for 99,900 more bytes
    assert answered.count(b"HTTP/1.1 ") == 1
    assert answered.split(b" ", 2)[1] in (b"415", b"404")


@pytest.mark.parametrize("head", [
    b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 300\r\n\r\n",
    b"GET /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n",
], ids=["415", "405"])
def test_an_early_answer_says_the_connection_closes(server: Server, head: bytes) -> None:
    """The connection closes after an answer that left the body arriving: the answer must say so,
    or a keep-alive client sends its next request into a closed connection (seen as a rare
    'Server disconnected without sending a response' under load, when the body came late)."""
    with tls_socket(server, timeout=5) as tls:
        tls.sendall(head + b"x" * 100)  # the rest comes later, or never
        answered = read_until_closed(tls)
    status_head = answered.partition(b"\r\n\r\n")[0].lower()
    assert b"\r\nconnection: close" in status_head, answered[:300]


def test_a_pipelined_request_still_arriving_keeps_the_connection(server: Server) -> None:
    """Answering one request while the next (pipelined) one's body is still on its way is no early
    answer: the connection stays open and the second request is answered once it is complete."""
    head, body = _request_bytes(load_review("pod-basic"))
    with tls_socket(server, timeout=5) as tls:
        tls.sendall(head + body + head + body[:100])
        first = _response(tls)
        time.sleep(0.3)  # the first answer is out; the connection must still be open
        tls.sendall(body[100:])
        second = _response(tls)
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 ")
    assert json.loads(second.partition(b"\r\n\r\n")[2])["response"]["patchType"] == "JSONPatch"


# --- slow clients --------------------------------------------------------------------------------


@pytest.fixture
def impatient(server_factory: Callable[..., Server]) -> Server:
    """A server that gives each request 1 second to arrive."""
    return server_factory("--header-timeout", "1", config=GOLDEN_CONFIG)


def _trickle(server: Server, data: bytes, every: float = 0.2) -> tuple[bytes, float]:
    """Send ``data`` a byte at a time; (what the server answered, seconds until it closed)."""
    with tls_socket(server) as tls:
        started = time.monotonic()
        try:
            for byte in data:
                tls.sendall(bytes([byte]))
                time.sleep(every)
        except (ConnectionError, ssl.SSLError):
            pass  # closed on us mid-send: expected
        answered = read_until_closed(tls)
        return answered, time.monotonic() - started


def _served_meanwhile(server: Server, work: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``work`` while another client keeps reviewing; (work's result, reviews answered)."""
    stop = threading.Event()
    answered = [0]

    def keep_reviewing() -> None:
        with server.client() as client:
            while not stop.is_set():
                assert post(client, load_review("pod-basic")).status_code == 200
                answered[0] += 1

    with ThreadPoolExecutor(1) as pool:
        other = pool.submit(keep_reviewing)
        try:
            result = work()
        finally:
            stop.set()
        other.result(10)
    return result, answered[0]


def test_slowloris_request_line_is_cut_off(impatient: Server) -> None:
    (answered, seconds), others = _served_meanwhile(
        impatient, lambda: _trickle(impatient, b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\n" * 4))
    assert answered.startswith(b"HTTP/1.1 408 ")
    assert seconds < 3  # 1 s to arrive, 1 s for the close handshake, scheduling slack
    assert others > 10  # everyone else was served all along
    assert impatient.client().get("/healthz").status_code == 200


def test_slow_body_is_cut_off(impatient: Server) -> None:
    body = json.dumps(load_review("pod-basic")).encode()
    head = (b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    with tls_socket(impatient) as tls:
        tls.sendall(head + body[:10])
        started = time.monotonic()
        try:
            for byte in body[10:40]:
                tls.sendall(bytes([byte]))
                time.sleep(0.2)
        except (ConnectionError, ssl.SSLError):
            pass
        answered = read_until_closed(tls)
        assert time.monotonic() - started < 3
    assert b"200 OK" not in answered


def test_connection_without_tls_hello_is_dropped(impatient: Server) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=10) as raw:
        started = time.monotonic()
        assert read_until_closed(raw) == b""
        assert time.monotonic() - started < 3


def test_idle_keep_alive_is_not_a_slow_request(impatient: Server) -> None:
    """The arrival clock starts at a request's first byte, not when the connection went idle."""
    with tls_socket(impatient) as tls:
        body = json.dumps(load_review("pod-basic")).encode()
        request = (b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        for _ in range(2):
            tls.sendall(request)
            response = b""
            while b'"uid"' not in response or not response.endswith(b"}}"):
                response += tls.recv(65536)
            assert response.startswith(b"HTTP/1.1 200 ")
            time.sleep(1.5)  # idle longer than --header-timeout, well within keep-alive


# --- overload ------------------------------------------------------------------------------------


def test_max_connections_answers_503_beyond_the_limit(server_factory: Callable[..., Server]) -> None:
    server = server_factory("--max-connections", "3", config=GOLDEN_CONFIG)
    review = load_review("pod-basic")
    clients = [server.client() for _ in range(3)]
    for client in clients:  # three open keep-alive connections: the limit
        assert post(client, review).status_code == 200
    with server.client() as extra:
        assert post(extra, review).status_code == 503
    clients[0].close()
    wait_for(lambda: post(server.client(), review).status_code == 200, timeout=5)
    assert server.process.poll() is None


# --- shutdown ------------------------------------------------------------------------------------


def _request_bytes(review: dict[str, Any]) -> tuple[bytes, bytes]:
    body = json.dumps(review).encode()
    head = (b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    return head, body


def _response(tls: ssl.SSLSocket) -> bytes:
    response = b""
    while not response.endswith(b"}}"):
        chunk = tls.recv(65536)
        if not chunk:
            break
        response += chunk
    return response


def test_sigterm_serves_in_flight_and_fresh_connections_through_the_drain(
        server_factory: Callable[..., Server]) -> None:
    server = server_factory("--header-timeout", "8", config=GOLDEN_CONFIG, drain_seconds=1)
    review = load_review("pod-basic")
    head, body = _request_bytes(review)
    with tls_socket(server) as in_flight:
        in_flight.sendall(head + body[:100])  # a request whose body is still arriving
        server.process.send_signal(signal.SIGTERM)
        client = server.client()
        wait_for(lambda: client.get("/readyz").status_code == 503, timeout=1)
        during = post(client, review)
        assert during.status_code == 200
        assert during.headers["connection"] == "close"  # move to another replica
        with tls_socket(server) as fresh:  # accepted during the drain, first request after it
            wait_for(lambda: refuses_connections(server), timeout=5)
            fresh.sendall(head + body)
            late = _response(fresh)
        in_flight.sendall(body[100:])
        finished = _response(in_flight)
    for response in (late, finished):
        assert response.startswith(b"HTTP/1.1 200 "), response[:200]
        assert b"connection: close" in response.lower()
        assert review["request"]["uid"].encode() in response
    assert server.process.wait(15) == 0


def test_deployment_shutdown_timing_covers_the_drain() -> None:
    """preStop covers endpoint removal; the grace period covers preStop + drain + in-flight requests."""
    deployment = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "sidecar-injector")
    environ = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    args = build_parser(environ).parse_args(["serve", *container.get("args", [])])
    configmap = yaml.safe_load((MANIFESTS / "configmap.yaml").read_text())
    deadline = args.deadline_seconds or load_config_text(configmap["data"]["config.yaml"]).deadlineSeconds
    webhook = yaml.safe_load((MANIFESTS / "mutatingwebhookconfiguration.yaml").read_text())["webhooks"][0]

    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod["terminationGracePeriodSeconds"]
    # Endpoint removal reaches kube-proxy and the API server within a few seconds on a healthy cluster.
    assert pre_stop >= 3
    # A request that arrived just before the drain ended (head and body within --header-timeout,
    # then the review within the deadline) still gets its answer after it.
    assert GRACEFUL_SHUTDOWN_SECONDS >= args.header_timeout + deadline
    assert grace >= pre_stop + args.drain_seconds + GRACEFUL_SHUTDOWN_SECONDS + 2, "2 s of slack"
    # Our deadline answers before the API server gives up on us.
    assert deadline < webhook["timeoutSeconds"]


# --- load with faults ------------------------------------------------------------------------------


def test_short_soak_with_rotation_reload_and_sigterm() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "soak.py"), "--requests", "2500", "--seconds", "6",
         "--concurrency", "8", "--drain-seconds", "1", "--json"],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert report["failed"] == 0 and report["lost"] == 0
    assert report["answered"] >= 1500
    assert report["answered_in_drain"] > 0
    assert report["exit_code"] == 0
    assert len(report["events"]) == 5
