"""Shared fixtures: real `python -m webhook serve` processes over real TLS, and clients for them."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from webhook import pki as certs

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
GOLDEN_CONFIG = FIXTURES / "config.yaml"  # the config every golden case without an override runs with
START_TIMEOUT = 20.0


def ssl_context_from(ca_file: Path) -> ssl.SSLContext:
    """Trust exactly our CA (httpx deprecates verify=<path>)."""
    return ssl.create_default_context(cafile=str(ca_file))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_review(case: str) -> dict[str, Any]:
    """A golden AdmissionReview request, by case name (tests/fixtures/<case>.review.json)."""
    return json.loads((FIXTURES / f"{case}.review.json").read_text())


@dataclass
class Server:
    """A running webhook subprocess."""

    url: str
    port: int
    ca_file: Path
    cert_dir: Path
    process: subprocess.Popen[bytes]
    log_file: Path
    config_file: Path | None = None
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        client = httpx.Client(base_url=self.url, verify=ssl_context_from(self.ca_file), timeout=10, **kwargs)
        self._clients.append(client)
        return client

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log().split("\n"):  # not splitlines(): U+2028 may sit inside a JSON line
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        for client in self._clients:
            client.close()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def make_certs(cert_dir: Path) -> Path:
    """A CA and a serving certificate for localhost/127.0.0.1; returns ca.crt."""
    return certs.write_bundle(cert_dir, None, None, []).ca_cert


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """`python -m webhook ARGS` to completion (for commands that are expected to exit)."""
    return subprocess.run([sys.executable, "-m", "webhook", *args], check=False, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or REPO)


def start_server(workdir: Path, *args: str, config: Path | None = None, cert_dir: Path | None = None,
                 drain_seconds: float = 0, reload_interval: float = 0.2) -> Server:
    """Start `python -m webhook serve` on a free loopback port and wait until /healthz answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert_dir = cert_dir or workdir / "certs"
    ca_file = cert_dir / "ca.crt"
    if not ca_file.exists():
        make_certs(cert_dir)
    port = free_port()
    command = [sys.executable, "-m", "webhook", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--cert-dir", str(cert_dir), "--drain-seconds", str(drain_seconds),
               "--reload-interval", str(reload_interval), *args]
    if config is not None:
        command += ["--config", str(config)]
    log_file = workdir / f"server-{port}.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    server = Server(f"https://127.0.0.1:{port}", port, ca_file, cert_dir, process, log_file, config)
    deadline = time.monotonic() + START_TIMEOUT
    context = ssl_context_from(ca_file)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", verify=context, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise RuntimeError(f"server did not answer /healthz within {START_TIMEOUT}s:\n{server.log()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One webhook with the golden fixtures' config, shared by the tests that do not change it."""
    running = start_server(tmp_path_factory.mktemp("server"), config=GOLDEN_CONFIG)
    yield running
    running.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start extra servers (for tests that reload, rotate or signal); all are stopped afterwards."""
    started: list[Server] = []

    def factory(*args: str, **kwargs: Any) -> Server:
        running = start_server(tmp_path / f"s{len(started)}", *args, **kwargs)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()
