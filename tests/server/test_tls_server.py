"""Security of the running server over real sockets: TLS versions and suites, mutual TLS with
the plain-HTTP health port beside it, no private key in logs, and the requester allow-list and
namespace-restricted profiles end to end over HTTPS."""

from __future__ import annotations

import copy
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from webhook import pki as certs

from conftest import GOLDEN_CONFIG, START_TIMEOUT, Server, free_port, load_review, make_certs, ssl_context_from
from tls_support import client_certificate

JSON = {"Content-Type": "application/json"}
REPLICASET_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"


# --- helpers ------------------------------------------------------------------------------------


def handshake(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    """A completed TLS handshake plus one request, or the error that refused it.

    Under TLS 1.3 the server checks a client certificate after the client thinks the handshake
    is done, so a refusal may only show on the first read.
    """
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = tls.recv(65536)
        if not answer:
            raise ConnectionAbortedError("closed without an answer")
        assert answer.startswith(b"HTTP/1.1 200 ")
        return tls
    except BaseException:
        tls.close()
        raise


def assert_refused(port: int, context: ssl.SSLContext) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(port, context).close()


def client_context(ca_file: Path, *, maximum: ssl.TLSVersion | None = None, ciphers: str | None = None
                   ) -> ssl.SSLContext:
    context = ssl_context_from(ca_file)
    if maximum is not None:
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


def handshakes_with_a_permissive_server(client: ssl.SSLContext, cert_dir: Path) -> bool:
    """Control: can this client complete a handshake at all with this machine's OpenSSL?"""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1, on purpose here
        server.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    server.set_ciphers("ALL:@SECLEVEL=0")
    server.load_cert_chain(cert_dir / "tls.crt", cert_dir / "tls.key")
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    theirs.settimeout(5)

    def serve() -> None:
        try:
            with server.wrap_socket(theirs, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(ours, server_hostname="127.0.0.1"):
            return True
    except (ssl.SSLError, OSError):
        return False
    finally:
        thread.join(5)
        theirs.close()


def post(client: httpx.Client, review: dict[str, Any]) -> httpx.Response:
    return client.post("/mutate", content=json.dumps(review), headers=JSON)


def config_file(tmp_path: Path, changes: dict[str, Any]) -> Path:
    data = yaml.safe_load(GOLDEN_CONFIG.read_text())
    for key, value in changes.items():  # "a.b.c" keys set nested values
        *parents, last = key.split(".")
        target = data
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def review_by(username: str, groups: list[str], namespace: str = "shop",
              annotations: dict[str, str] | None = None) -> dict[str, Any]:
    review = copy.deepcopy(load_review("pod-basic"))
    request = review["request"]
    request["userInfo"] = {"username": username, "groups": groups}
    request["namespace"] = namespace
    request["object"]["metadata"]["annotations"].update(annotations or {})
    return review


# --- protocol versions and suites --------------------------------------------------------------------


def test_tls12_with_forward_secret_aead_suites_is_served(server: Server) -> None:
    context = client_context(server.ca_file, maximum=ssl.TLSVersion.TLSv1_2)
    with handshake(server.port, context) as tls:
        name, version, _ = tls.cipher()  # type: ignore[misc]
    assert version == "TLSv1.2"
    assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)


def test_tls11_client_is_refused(server: Server) -> None:
    context = client_context(server.ca_file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ssl.SSLError, ValueError) as error:
        pytest.skip(f"this OpenSSL cannot build a TLS 1.1 client: {error}")
    if not handshakes_with_a_permissive_server(context, server.cert_dir):
        pytest.skip("this OpenSSL cannot complete a TLS 1.1 handshake at all")
    assert_refused(server.port, context)


@pytest.mark.parametrize("ciphers", ["ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA",
                                     "AES128-SHA:AES256-SHA:AES128-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384"],
                         ids=["ecdhe-cbc", "rsa-key-exchange"])
def test_tls12_client_limited_to_weak_suites_is_refused(server: Server, ciphers: str) -> None:
    context = client_context(server.ca_file, maximum=ssl.TLSVersion.TLSv1_2, ciphers=ciphers)
    assert_refused(server.port, context)


# --- mutual TLS and the health port ---------------------------------------------------------------


def start_mtls_server(workdir: Path, client_ca: Path, health_port: int) -> Server:
    """conftest's start_server polls /healthz without a client certificate, which mTLS refuses:
    this one waits on the plain-HTTP health port instead."""
    cert_dir = workdir / "certs"
    make_certs(cert_dir)
    port = free_port()
    log_file = workdir / "server.log"
    command = [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--cert-dir", str(cert_dir), "--config", str(GOLDEN_CONFIG), "--drain-seconds", "0",
               "--client-ca", str(client_ca), "--health-port", str(health_port), "--log-level", "debug"]
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    server = Server(f"https://127.0.0.1:{port}", port, cert_dir / "ca.crt", cert_dir, process, log_file)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise RuntimeError(f"server did not start:\n{server.log()}")
        time.sleep(0.05)


@pytest.fixture
def mtls(tmp_path: Path) -> Any:
    ca_key, ca = certs.generate_ca("test-client-ca")
    ca_file = tmp_path / "client-ca.crt"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    health_port = free_port()
    server = start_mtls_server(tmp_path / "server", ca_file, health_port)
    yield server, health_port, client_certificate(ca_key, ca, tmp_path / "good")
    server.stop()


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_client_ca_refuses_clients_without_a_good_certificate(tmp_path: Path, mtls: Any,
                                                              maximum: ssl.TLSVersion) -> None:
    server, _, good = mtls
    assert_refused(server.port, client_context(server.ca_file, maximum=maximum))  # no certificate

    other_key, other_ca = certs.generate_ca("some-other-ca")
    wrong = client_context(server.ca_file, maximum=maximum)
    wrong.load_cert_chain(*client_certificate(other_key, other_ca, tmp_path / "wrong"))
    assert_refused(server.port, wrong)

    right = client_context(server.ca_file, maximum=maximum)
    right.load_cert_chain(*good)
    handshake(server.port, right).close()
    with httpx.Client(base_url=server.url, verify=right, timeout=10) as client:
        response = post(client, load_review("pod-basic"))
        assert response.status_code == 200 and response.json()["response"]["patch"]


def test_health_port_serves_probes_and_metrics_only_over_plain_http(mtls: Any) -> None:
    server, health_port, _ = mtls
    with httpx.Client(base_url=f"http://127.0.0.1:{health_port}", timeout=5) as health:
        assert health.get("/healthz").json() == {"status": "ok"}
        assert health.get("/readyz").json() == {"status": "ready"}
        assert "sidecar_injector_reviews_total" in health.get("/metrics").text
        refused = post(health, load_review("pod-basic"))
        assert refused.status_code == 404  # no admission traffic without TLS
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(15) == 0
    assert "PRIVATE KEY" not in server.log()


def test_health_port_readyz_fails_at_once_on_sigterm(tmp_path: Path, server_factory: Callable[..., Server]) -> None:
    health_port = free_port()
    server = server_factory("--health-port", str(health_port), config=GOLDEN_CONFIG, drain_seconds=2)
    server.process.send_signal(signal.SIGTERM)
    with httpx.Client(base_url=f"http://127.0.0.1:{health_port}", timeout=5) as health:
        deadline = time.monotonic() + 1
        while health.get("/readyz").status_code != 503:
            assert time.monotonic() < deadline, "readyz still ready 1 s after SIGTERM"
            time.sleep(0.02)
        assert health.get("/healthz").status_code == 200  # alive: the kubelet must not restart it
    assert server.process.wait(15) == 0


def test_health_port_in_use_is_a_one_line_startup_error(tmp_path: Path) -> None:
    make_certs(tmp_path / "certs")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port", str(free_port()),
             "--cert-dir", str(tmp_path / "certs"), "--health-port", str(port)],
            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"--host/--health-port 127.0.0.1:{port}: cannot listen" in result.stderr


def test_private_key_is_never_logged(server_factory: Callable[..., Server]) -> None:
    server = server_factory("--log-level", "debug", config=GOLDEN_CONFIG)
    key_pem = (server.cert_dir / "tls.key").read_text()

    def wait_for_reload(result: str) -> None:
        deadline = time.monotonic() + 10
        while f'sidecar_injector_certificate_reloads_total{{result="{result}"}} 1.0' not in (
                server.client().get("/metrics").text):
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)

    certs.renew_serving_cert(server.cert_dir)  # a good rotation
    new_key = (server.cert_dir / "tls.key").read_text()
    wait_for_reload("success")
    (server.cert_dir / "tls.key").write_text(key_pem)  # then a key that does not match: rejected
    wait_for_reload("error")
    assert server.stop() == 0
    log = server.log()
    assert "does not match" in log
    assert "PRIVATE KEY" not in log
    for pem in (key_pem, new_key):
        body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
        assert not any(line in log for line in body)


# --- requester allow-list and namespace-restricted profiles, end to end ----------------------------------


@pytest.mark.parametrize("on_mismatch", ["deny", "allow"])
def test_requester_allow_list_over_https(tmp_path: Path, server_factory: Callable[..., Server],
                                         on_mismatch: str) -> None:
    config = config_file(tmp_path, {"requesters": {"enabled": True, "onMismatch": on_mismatch}})
    client = server_factory(config=config).client()

    controller = post(client, review_by(REPLICASET_CONTROLLER, ["system:serviceaccounts"])).json()["response"]
    assert controller["allowed"] is True and controller["patch"]

    admin = post(client, review_by("alice", ["system:masters", "system:authenticated"])).json()["response"]
    assert admin["allowed"] is True and admin["patch"]  # the default group list admits cluster admins

    stranger = post(client, review_by("mallory", ["system:authenticated"])).json()["response"]
    assert "patch" not in stranger
    message = "requester mallory may not trigger sidecar injection"
    if on_mismatch == "deny":
        assert stranger["allowed"] is False
        assert stranger["status"]["code"] == 403
        assert stranger["status"]["message"] == message
    else:
        assert stranger["allowed"] is True
        assert f"not injected: {message}" in stranger["warnings"]


def test_profile_denied_in_a_namespace_names_both(tmp_path: Path, server_factory: Callable[..., Server]) -> None:
    config = config_file(tmp_path, {"profiles.logging.namespaces": {"deny": ["payments"]},
                                    "profiles.proxy.namespaces": {"allow": ["shop", "team-*"]}})
    client = server_factory(config=config).client()
    asks_logging = {"sidecar-injector.io/profiles": "logging"}

    denied = post(client, review_by(REPLICASET_CONTROLLER, [], "payments", asks_logging)).json()["response"]
    assert denied["allowed"] is False
    assert denied["status"]["code"] == 403
    assert "logging" in denied["status"]["message"] and "payments" in denied["status"]["message"]

    elsewhere = post(client, review_by(REPLICASET_CONTROLLER, [], "shop", asks_logging)).json()["response"]
    assert elsewhere["allowed"] is True and elsewhere["patch"]

    # The default profile (proxy) is only for its namespaces: elsewhere it is left out, with a warning.
    default = post(client, review_by(REPLICASET_CONTROLLER, [], "team-a")).json()["response"]
    assert default["allowed"] is True and default["patch"]
    outside = post(client, review_by(REPLICASET_CONTROLLER, [], "payments")).json()["response"]
    assert outside["allowed"] is True and "patch" not in outside
    assert any("proxy" in w and "payments" in w for w in outside["warnings"])
