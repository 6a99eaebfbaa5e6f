"""The server end to end: real subprocesses, real TLS, real signals; no mocks."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import pytest
import yaml
from cryptography import x509

from webhook import pki as certs
from webhook.config import example_config_text

from conftest import FIXTURES, Server, load_review, make_certs, run_cli, ssl_context_from

JSON = {"Content-Type": "application/json"}
# Golden cases that run with the shared golden config (the others bring a <case>.config.yaml).
GOLDEN_CASES = sorted(
    name for name in (p.name.removesuffix(".review.json") for p in FIXTURES.glob("*.review.json"))
    if not (FIXTURES / f"{name}.config.yaml").exists()
)


def post_review(client: httpx.Client, review: dict[str, Any]) -> httpx.Response:
    return client.post("/mutate", content=json.dumps(review), headers=JSON)


def with_uid(review: dict[str, Any], uid: str) -> dict[str, Any]:
    review = copy.deepcopy(review)
    review["request"]["uid"] = uid
    return review


def metric_value(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def served_serial(server: Server) -> int:
    """Serial of the certificate a *new* connection is handed."""
    context = ssl_context_from(server.ca_file)
    with (socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
          context.wrap_socket(raw, server_hostname="127.0.0.1") as tls):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def raw_request(server: Server, head: bytes) -> bytes:
    """Send a hand-written HTTP/1.1 request head over TLS and return the response."""
    context = ssl_context_from(server.ca_file)
    with (socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
          context.wrap_socket(raw, server_hostname="127.0.0.1") as tls):
        tls.sendall(head)
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
            if b"\r\n\r\n" in response and b'"}' in response:
                break
        return response


@pytest.fixture
def client(server: Server) -> httpx.Client:
    return server.client()


# --- endpoints -------------------------------------------------------------------------------


def test_healthz_and_readyz(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


@pytest.mark.parametrize("case", ["pod-basic", "pod-v1beta1"])
def test_review_answers_in_the_request_api_version(client: httpx.Client, case: str) -> None:
    review = load_review(case)
    response = post_review(client, review)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["apiVersion"] == review["apiVersion"]
    assert body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    assert body["response"]["allowed"] is True


def test_injected_patch_applies_to_the_pod(client: httpx.Client) -> None:
    review = load_review("deployment-pod")
    answer = post_review(client, review).json()["response"]
    assert answer["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(answer["patch"]))
    pod = jsonpatch.apply_patch(review["request"]["object"], patch)
    assert "proxy" in {c["name"] for c in pod["spec"]["initContainers"]}
    assert "sidecar-injector.io/status" in pod["metadata"]["annotations"]


@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_case_through_the_server(client: httpx.Client, case: str) -> None:
    """The webhook path gives what the golden file records for the pure engine."""
    review = load_review(case)
    expected = yaml.safe_load((FIXTURES / f"{case}.expected.yaml").read_text())
    response = post_review(client, review)
    assert response.status_code == 200
    body = response.json()
    answer = body["response"]
    assert body["apiVersion"] == expected["apiVersion"]
    assert answer["uid"] == expected["uid"]
    assert answer["allowed"] == expected["allowed"]
    assert answer.get("status") == expected.get("status")
    assert answer.get("warnings", []) == expected["warnings"]
    assert answer.get("auditAnnotations", {}) == expected["auditAnnotations"]
    if expected["patchedPod"] is None:
        assert "patch" not in answer
    else:
        patch = json.loads(base64.b64decode(answer["patch"]))
        assert jsonpatch.apply_patch(review["request"]["object"], patch) == expected["patchedPod"]


def test_opt_out_is_allowed_without_patch(client: httpx.Client) -> None:
    answer = post_review(client, load_review("opt-out-annotation")).json()["response"]
    assert answer["allowed"] is True
    assert "patch" not in answer


def test_invalid_annotation_is_denied_with_a_message(client: httpx.Client) -> None:
    response = post_review(client, load_review("invalid-drain-seconds"))
    assert response.status_code == 200
    answer = response.json()["response"]
    assert answer["allowed"] is False
    assert "sidecar-injector.io/drain-seconds" in answer["status"]["message"]


# --- error statuses -----------------------------------------------------------------------------


def test_413_by_content_length_before_reading(server: Server) -> None:
    head = (b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 3145729\r\n\r\n")
    response = raw_request(server, head)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert b'"error":"request body exceeds 3145728 bytes"' in response


def test_413_by_counting_a_streamed_body(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(13):  # 13 * 256 KiB = 3.25 MiB, no Content-Length (chunked)
            yield b" " * (256 * 1024)

    response = client.post("/mutate", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert "exceeds" in response.json()["error"]


def test_415_wrong_content_type(client: httpx.Client) -> None:
    review = json.dumps(load_review("pod-basic"))
    response = client.post("/mutate", content=review, headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
    charset = client.post("/mutate", content=review, headers={"Content-Type": "application/json; charset=utf-8"})
    assert charset.status_code == 200


def test_400_malformed_json(client: httpx.Client) -> None:
    response = client.post("/mutate", content=b'{"apiVersion": ', headers=JSON)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_400_missing_uid(client: httpx.Client) -> None:
    review = load_review("pod-basic")
    del review["request"]["uid"]
    response = post_review(client, review)
    assert response.status_code == 400
    assert "request.uid" in response.json()["error"]


def test_404_and_405_are_json(client: httpx.Client) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong = client.get("/mutate")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert "POST" in wrong.json()["error"]
    assert client.post("/healthz").status_code == 405


# --- observability ------------------------------------------------------------------------------


def test_metrics_count_reviews_and_time_them(client: httpx.Client) -> None:
    for case in ("pod-basic", "opt-out-annotation", "invalid-drain-seconds"):
        post_review(client, load_review(case))
    client.post("/mutate", content=b"{", headers=JSON)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric_value(text, "sidecar_injector_reviews_total", '{decision="injected",reason="injected"}') >= 1
    assert metric_value(text, "sidecar_injector_reviews_total", '{decision="skipped",reason="opted-out"}') >= 1
    assert metric_value(text, "sidecar_injector_reviews_total",
                        '{decision="denied",reason="invalid-annotation"}') >= 1
    assert metric_value(text, "sidecar_injector_reviews_total", '{decision="error",reason="malformed-json"}') >= 1
    for bucket in ("0.005", "0.025"):
        assert f'sidecar_injector_review_duration_seconds_bucket{{le="{bucket}"}}' in text
    assert metric_value(text, "sidecar_injector_review_duration_seconds_count") >= 4
    assert re.search(r'^sidecar_injector_config_info\{hash="[0-9a-f]{16}"\} 1\.0$', text, re.MULTILINE)
    assert "# TYPE sidecar_injector_config_reloads_total counter" in text
    assert "# TYPE sidecar_injector_certificate_reloads_total counter" in text


def test_one_structured_log_line_per_review(server: Server, client: httpx.Client) -> None:
    uid = str(uuid.uuid4())
    post_review(client, with_uid(load_review("deployment-pod"), uid))

    def logged() -> list[dict[str, Any]]:
        return [r for r in server.log_records() if r.get("logger") == "webhook.review" and r.get("uid") == uid]

    wait_for(lambda: bool(logged()), timeout=5)
    (line,) = logged()
    assert line["kind"] == "Pod"
    assert line["namespace"] == "shop"
    assert line["name"] == "web-7d9f8c6b5-*"  # generateName + "*": controllers send no name
    assert line["operation"] == "CREATE"
    assert line["decision"] == "injected"
    assert line["reason"] == "injected"
    assert line["profiles"] == ["proxy"]
    assert line["warnings"] == 0
    assert isinstance(line["duration_ms"], float)


# --- startup failures ---------------------------------------------------------------------------


def _assert_one_line_error(result: Any, must_name: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sidecar-injector: error:")]
    assert len(errors) == 1, result.stderr
    assert must_name in errors[0]


def test_invalid_config_at_startup_exits_with_one_line(tmp_path: Path) -> None:
    make_certs(tmp_path / "certs")
    bad = tmp_path / "bad-config.yaml"
    bad.write_text("defaultProfiles: [missing]\nprofiles: {}\nbogusKey: 1\n")
    result = run_cli("serve", "--host", "127.0.0.1", "--port", "0", "--cert-dir", str(tmp_path / "certs"),
                     "--config", str(bad))
    _assert_one_line_error(result, str(bad))


def test_unreadable_certificate_at_startup_exits_with_one_line(tmp_path: Path) -> None:
    cert_dir = tmp_path / "certs"
    make_certs(cert_dir)
    (cert_dir / "tls.crt").write_text("not a certificate\n")
    result = run_cli("serve", "--host", "127.0.0.1", "--port", "0", "--cert-dir", str(cert_dir))
    _assert_one_line_error(result, str(cert_dir / "tls.crt"))


def test_mismatched_key_at_startup_exits_with_one_line(tmp_path: Path) -> None:
    cert_dir, other = tmp_path / "certs", tmp_path / "other"
    make_certs(cert_dir)
    make_certs(other)
    (cert_dir / "tls.key").write_bytes((other / "tls.key").read_bytes())
    result = run_cli("serve", "--host", "127.0.0.1", "--port", "0", "--cert-dir", str(cert_dir))
    _assert_one_line_error(result, "does not match")


# --- hot reload ---------------------------------------------------------------------------------


def _replace(path: Path, text: str) -> None:
    """Write then rename, the way a ConfigMap volume swaps content (never a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_config_hot_reload_and_rejection(tmp_path: Path, server_factory: Callable[..., Server]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(example_config_text())
    server = server_factory(config=config)
    client = server.client()

    def profiles() -> str:
        return str(post_review(client, load_review("pod-basic")).json()["response"]["auditAnnotations"]["profiles"])

    assert profiles() == "proxy"
    _replace(config, example_config_text().replace("defaultProfiles: [proxy]", "defaultProfiles: [logging]"))
    wait_for(lambda: profiles() == "logging")

    _replace(config, "defaultProfiles: [nope]\n")
    wait_for(lambda: metric_value(client.get("/metrics").text, "sidecar_injector_config_reloads_total",
                                  '{result="error"}') == 1)
    assert profiles() == "logging"  # the old config is kept
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").text
    assert metric_value(metrics, "sidecar_injector_config_reloads_total", '{result="success"}') == 1
    rejected = [r for r in server.log_records() if r["msg"].startswith("config change rejected")]
    assert len(rejected) == 1
    assert str(config) in rejected[0]["file"] and "nope" in rejected[0]["error"]


def test_certificate_rotation_without_restart(server_factory: Callable[..., Server]) -> None:
    server = server_factory()
    old_serial = served_serial(server)
    review = load_review("pod-basic")
    results: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def keep_sending() -> None:
        with server.client() as client:  # one keep-alive connection throughout
            while not stop.is_set():
                uid = str(uuid.uuid4())
                try:
                    response = post_review(client, with_uid(review, uid))
                    if response.status_code != 200 or response.json()["response"]["uid"] != uid:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    results.append(uid)
                except httpx.HTTPError as error:
                    failures.append(repr(error))

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        wait_for(lambda: len(results) >= 5)
        certs.renew_serving_cert(server.cert_dir)
        new_serial = x509.load_pem_x509_certificate((server.cert_dir / "tls.crt").read_bytes()).serial_number
        assert new_serial != old_serial
        wait_for(lambda: served_serial(server) == new_serial, timeout=10, interval=0.1)
        sent_before = len(results)
        wait_for(lambda: len(results) >= sent_before + 5)
    finally:
        stop.set()
        sender.join(10)
    assert not failures
    assert server.process.poll() is None
    serving = [r for r in server.log_records() if r["msg"] == "serving"]
    assert [r["pid"] for r in serving] == [server.process.pid]  # the same process, never restarted
    with server.client() as client:
        metrics = client.get("/metrics").text
    assert metric_value(metrics, "sidecar_injector_certificate_reloads_total", '{result="success"}') >= 1


# --- shutdown -----------------------------------------------------------------------------------


def test_sigterm_drains_then_exits_zero(server_factory: Callable[..., Server]) -> None:
    server = server_factory(drain_seconds=2)
    client = server.client()
    review = load_review("pod-basic")
    assert post_review(client, review).status_code == 200
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    wait_for(lambda: client.get("/readyz").status_code == 503, timeout=1)
    assert client.get("/readyz").json()["reasons"] == ["shutting down"]
    assert client.get("/healthz").status_code == 200
    assert post_review(client, review).status_code == 200  # in-flight connection still served
    with server.client() as fresh:  # and new connections too, during the drain
        assert post_review(fresh, review).status_code == 200
    assert server.process.wait(15) == 0
    assert time.monotonic() - signalled >= 1.8


def test_workers_share_port_and_metrics(server_factory: Callable[..., Server]) -> None:
    server = server_factory("--workers", "2")

    def worker_pids() -> set[int]:
        return {r["pid"] for r in server.log_records() if r["msg"] == "serving"}

    wait_for(lambda: len(worker_pids()) == 2)
    assert server.process.pid not in worker_pids()
    sent = 0

    def answered_by() -> set[int]:
        return {r["pid"] for r in server.log_records() if r["logger"] == "webhook.review"}

    while sent < 10 or (len(answered_by()) < 2 and sent < 200):
        with server.client() as client:  # a new connection each time, so both workers get some
            assert post_review(client, load_review("opt-out-annotation")).status_code == 200
        sent += 1
    assert answered_by() == worker_pids()
    for _ in range(4):  # whichever worker answers /metrics, the count is the sum over both
        with server.client() as client:
            text = client.get("/metrics").text
        assert metric_value(text, "sidecar_injector_reviews_total", '{decision="skipped",reason="opted-out"}') == sent
    assert server.stop() == 0


def test_a_worker_that_dies_is_replaced(server_factory: Callable[..., Server]) -> None:
    server = server_factory("--workers", "2")

    def worker_pids() -> list[int]:
        return [r["pid"] for r in server.log_records() if r["msg"] == "serving"]

    wait_for(lambda: len(worker_pids()) == 2)
    victim = worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(worker_pids()) == 3)
    replaced = [r for r in server.log_records() if r["msg"] == "worker exited; starting another"]
    assert [(r["pid"], r["exitcode"]) for r in replaced] == [(victim, -signal.SIGKILL)]
    with server.client() as client:
        assert post_review(client, load_review("opt-out-annotation")).status_code == 200
    assert server.stop() == 0


def test_a_worker_that_cannot_start_stops_the_supervisor(tmp_path: Path) -> None:
    """A worker exiting with STARTUP_FAILURE would fail the same way again: no restart loop."""
    code = (
        "import socket, sys\n"
        "from webhook.server.supervisor import supervise\n"
        "from supervisor_targets import cannot_start\n"
        "sys.exit(supervise(2, cannot_start, (), (socket.socket(),)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr


def test_connections_opened_together_are_spread_over_the_workers(server_factory: Callable[..., Server]) -> None:
    """Like the API server's pool: 16 keep-alive connections opened at once. With one shared
    socket, one worker could accept them all and leave the other idle while they live."""
    server = server_factory("--workers", "2")

    def worker_pids() -> set[int]:
        return {r["pid"] for r in server.log_records() if r["msg"] == "serving"}

    wait_for(lambda: len(worker_pids()) == 2)
    head, body = _review_request(load_review("opt-out-annotation"))
    context = ssl_context_from(server.ca_file)
    raw = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(16)]
    connections: list[ssl.SSLSocket] = []
    try:
        for sock in raw:
            connections.append(context.wrap_socket(sock, server_hostname="127.0.0.1"))  # takes the socket over
        for tls in connections:
            tls.sendall(head + body)
        for tls in connections:
            answered = b""
            while not answered.endswith(b"}}"):
                chunk = tls.recv(65536)
                assert chunk, "connection closed before the answer"
                answered += chunk
            assert answered.startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in (*connections, *raw[len(connections):]):
            sock.close()

    def answered_by() -> list[int]:
        return [r["pid"] for r in server.log_records() if r["logger"] == "webhook.review"]

    wait_for(lambda: len(answered_by()) == 16)
    assert set(answered_by()) == worker_pids()  # both workers hold some of the connections
    assert server.stop() == 0


def _review_request(review: dict[str, Any]) -> tuple[bytes, bytes]:
    body = json.dumps(review).encode()
    return (b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"), body


def test_with_reuse_port_each_worker_listens_on_a_socket_of_its_own() -> None:
    from webhook.server.sockets import REUSE_PORT, bind, worker_socket

    if REUSE_PORT is None:
        pytest.skip("SO_REUSEPORT balancing is Linux's; elsewhere the workers share one socket")

    shared = bind("127.0.0.1", 0)
    assert worker_socket(shared) is shared
    pooled = bind("127.0.0.1", 0, reuse_port=True)
    port = pooled.getsockname()[1]
    own = worker_socket(pooled)
    try:
        assert own is not pooled and own.getsockname()[1] == port and pooled.fileno() == -1
    finally:
        own.close()
        shared.close()


# --- load ---------------------------------------------------------------------------------------


def test_1000_reviews_from_8_keep_alive_clients(server: Server) -> None:
    review = load_review("pod-basic")
    uids = [str(uuid.uuid4()) for _ in range(1000)]
    per_client = [uids[i::8] for i in range(8)]

    def run(batch: list[str]) -> list[str]:
        problems = []
        with server.client() as client:
            for uid in batch:
                response = post_review(client, with_uid(review, uid))
                body = response.json()
                if (response.status_code != 200 or body["response"]["uid"] != uid
                        or body["apiVersion"] != review["apiVersion"] or not body["response"].get("patch")):
                    problems.append(f"{uid}: {response.status_code} {response.text[:200]}")
        return problems

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        problems = [p for batch in pool.map(run, per_client) for p in batch]
    elapsed = time.monotonic() - started
    assert not problems
    assert elapsed < 30, f"1000 reviews took {elapsed:.1f}s"
