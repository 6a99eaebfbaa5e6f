#!/usr/bin/env python3
"""Soak the webhook with faults: load from keep-alive clients while certificates rotate, the config
is replaced (valid, then invalid) and the server is sent SIGTERM; prove nothing is lost.

    python scripts/soak.py --requests 20000 --seconds 30 --concurrency 16

It starts its own server on 127.0.0.1 (a free port, a temporary directory) and talks to nothing
else. The clients spread ``--requests`` evenly over ``--seconds`` (faster if they can: a slow
server just falls behind the schedule), so the run is bounded in both. Faults fire at fixed
points of that time: 15% certificate rotation, 30% a valid new config, 45% an invalid config
(the old one must stay), 60% a second rotation, 70% SIGTERM. After SIGTERM clients keep to the
schedule until the server is gone.

Every request ends one way:

* answered  200 with a well-formed review echoing its uid;
* failed    anything else before SIGTERM, or a wrong answer at any time (must be 0);
* lost      after SIGTERM, written on an open connection but never answered (must be 0);
* refused   after SIGTERM, the connection could not be opened: the server has stopped
            listening, as it should once the drain is over. Not a loss.

Exit status 0 when every check holds; the report goes to stdout (--json for machines).
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from webhook import pki as certs  # noqa: E402
from webhook.config import example_config_text  # noqa: E402

HOST = "127.0.0.1"
FAULTS = (0.15, "rotate"), (0.30, "config-valid"), (0.45, "config-invalid"), (0.60, "rotate"), (0.70, "sigterm")
INVALID_CONFIG = "defaultProfiles: [no-such-profile]\n"
COUNTS = ("sent", "answered", "answered_in_drain", "failed", "lost", "refused")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def review(uid: str, containers: int) -> bytes:
    """A controller-made Pod with ``containers`` application containers."""
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "web-", "namespace": "soak", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": f"app{i}", "image": "nginx:1.27", "ports": [{"containerPort": 8080 + i}]}
                                for i in range(containers)]},
    }
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "namespace": "soak", "operation": "CREATE", "object": pod,
                    "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"}},
    }).encode()


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in KiB, from /proc; empty where /proc is not available."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {key: int(rest.split()[0]) for key, _, rest in (line.partition(":") for line in lines)
            if key in ("VmRSS", "VmHWM")}


@dataclass
class Tally:
    """What happened to every request (shared by the client threads, under ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    sent: int = 0
    answered: int = 0
    answered_in_drain: int = 0
    failed: int = 0
    lost: int = 0
    refused: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)
    problems: list[str] = field(default_factory=list, repr=False)

    def problem(self, kind: str, text: str) -> None:
        with self.lock:
            setattr(self, kind, getattr(self, kind) + 1)
            if len(self.problems) < 20:
                self.problems.append(f"{kind}: {text}")


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.cert_dir = workdir / "certs"
        self.config_file = workdir / "config.yaml"
        self.port = free_port()
        self.tally = Tally()
        self.numbers = itertools.count()
        self.sigterm_at: float | None = None  # monotonic
        self.interval = args.seconds / args.requests
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.events: list[str] = []
        self.rss: list[tuple[float, int]] = []
        self.peak_kib = 0
        self.context: ssl.SSLContext
        self.process: subprocess.Popen[bytes]

    # --- the server -------------------------------------------------------------------------

    def start_server(self) -> None:
        certs.write_bundle(self.cert_dir, None, None, [])
        self.context = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
        self.config_file.write_text(example_config_text())
        command = [sys.executable, "-m", "webhook", "serve", "--host", HOST, "--port", str(self.port),
                   "--cert-dir", str(self.cert_dir), "--config", str(self.config_file), "--reload-interval",
                   "0.2", "--drain-seconds", str(self.args.drain_seconds), "--log-level", "warning"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.log_file = self.workdir / "server.log"
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env)
        deadline = time.monotonic() + 20
        while self.get("/healthz")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start:\n{self.log_file.read_text()}")
            time.sleep(0.05)

    def get(self, path: str) -> tuple[int, str]:
        """A one-off GET on a fresh connection; (0, error) when none can be made."""
        connection = http.client.HTTPSConnection(HOST, self.port, context=self.context, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError as error:
            return 0, str(error)
        finally:
            connection.close()

    def metric(self, name: str) -> float:
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def served_serial(self) -> int:
        with (socket.create_connection((HOST, self.port), timeout=5) as raw,
              self.context.wrap_socket(raw, server_hostname=HOST) as tls):
            der = tls.getpeercert(binary_form=True)
        from cryptography import x509

        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    # --- clients ----------------------------------------------------------------------------

    def client(self) -> None:
        """One keep-alive client: reuses its connection until the server asks it to close."""
        connection: http.client.HTTPSConnection | None = None
        while not self.stop.is_set():
            number = next(self.numbers)
            if number >= self.args.requests:
                break
            delay = self.started + number * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            uid = f"soak-{number}"
            body = review(uid, 1 + number % 3)
            after_sigterm = self.sigterm_at is not None
            if connection is None:
                connection = http.client.HTTPSConnection(HOST, self.port, context=self.context, timeout=10)
                try:
                    connection.connect()
                except OSError as error:
                    connection = None
                    if after_sigterm:
                        with self.tally.lock:
                            self.tally.refused += 1
                        break  # the server is gone; this client is done
                    self.tally.problem("failed", f"{uid}: connect: {error!r}")
                    continue
            started = time.perf_counter()
            with self.tally.lock:
                self.tally.sent += 1
            try:
                connection.request("POST", "/mutate", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = None
                self.tally.problem("lost" if after_sigterm else "failed", f"{uid}: {error!r}")
                continue
            seconds = time.perf_counter() - started
            if response.will_close:
                connection.close()
                connection = None
            try:
                answer = json.loads(data)["response"]
                ok = response.status == 200 and answer["uid"] == uid and answer["allowed"] is True
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                self.tally.problem("failed", f"{uid}: HTTP {response.status} {data[:200]!r}")
                continue
            with self.tally.lock:
                self.tally.answered += 1
                if after_sigterm:
                    self.tally.answered_in_drain += 1
                else:
                    self.tally.latencies.append(seconds)
        if connection is not None:
            connection.close()

    # --- faults -----------------------------------------------------------------------------

    def progress(self) -> float:
        return (time.monotonic() - self.started) / self.args.seconds

    def rotate(self) -> None:
        old = self.served_serial()
        new = certs.renew_serving_cert(self.cert_dir)
        from cryptography import x509

        serial = x509.load_pem_x509_certificate(new.tls_cert.read_bytes()).serial_number
        self.wait(lambda: self.served_serial() == serial, "the new certificate to be served")
        self.events.append(f"rotated certificate {old:x} -> {serial:x}")

    def replace_config(self, text: str, result: str) -> None:
        before = self.metric(f'sidecar_injector_config_reloads_total{{result="{result}"}}')
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_file)  # the way a ConfigMap volume swaps content
        self.wait(lambda: self.metric(f'sidecar_injector_config_reloads_total{{result="{result}"}}') > before,
                  f"a config reload with result {result}")
        self.events.append(f"config replaced: reload {result}")

    def sigterm(self) -> None:
        self.sigterm_at = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.wait(lambda: self.get("/readyz")[0] == 503, "/readyz to fail after SIGTERM", timeout=2)
        self.events.append("SIGTERM: /readyz 503")

    def wait(self, condition: Any, what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)

    def sample_rss(self) -> None:
        status = proc_status(self.process.pid)
        if "VmRSS" in status:
            self.rss.append((time.monotonic(), status["VmRSS"]))
        self.peak_kib = status.get("VmHWM", self.peak_kib)

    def run(self) -> dict[str, Any]:
        self.start_server()
        self.started = started = time.monotonic()
        threads = [threading.Thread(target=self.client, daemon=True) for _ in range(self.args.concurrency)]
        for thread in threads:
            thread.start()
        faults = list(FAULTS)
        try:
            while faults:
                self.sample_rss()
                at, fault = faults[0]
                if self.progress() >= at:
                    faults.pop(0)
                    {"rotate": self.rotate,
                     "config-valid": lambda: self.replace_config(
                         example_config_text().replace("defaultProfiles: [proxy]", "defaultProfiles: [logging]"),
                         "success"),
                     "config-invalid": lambda: self.replace_config(INVALID_CONFIG, "error"),
                     "sigterm": self.sigterm}[fault]()
                if not any(t.is_alive() for t in threads) and faults:
                    raise AssertionError(f"the clients stopped before {faults[0][1]}")
                time.sleep(0.02)
            exit_code = self.process.wait(self.args.drain_seconds + 30)
            stopped = time.monotonic()
        finally:
            self.stop.set()
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        for thread in threads:
            thread.join(15)
        return self.report(exit_code, stopped - (self.sigterm_at or stopped), time.monotonic() - started)

    def report(self, exit_code: int, shutdown_seconds: float, seconds: float) -> dict[str, Any]:
        tally = self.tally
        latencies = sorted(tally.latencies)

        def percentile(p: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else 0.0

        # RSS after warm-up (first fifth of the samples) against the last sample before SIGTERM.
        warm = self.rss[len(self.rss) // 5][1] if self.rss else 0
        last = self.rss[-1][1] if self.rss else 0
        counts = {name: getattr(tally, name) for name in COUNTS}
        return {
            **counts,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "peak_rss_mib": round(self.peak_kib / 1024, 1),
            "rss_after_warmup_mib": round(warm / 1024, 1),
            "rss_before_sigterm_mib": round(last / 1024, 1),
            "exit_code": exit_code,
            "sigterm_to_exit_seconds": round(shutdown_seconds, 2),
            "seconds": round(seconds, 2),
            "events": self.events,
            "problems": tally.problems,
        }


def check(report: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The promises; each broken one is a line."""
    broken = []
    if report["failed"]:
        broken.append(f"{report['failed']} requests failed before SIGTERM (or got a wrong answer)")
    if report["lost"]:
        broken.append(f"{report['lost']} in-flight requests were lost after SIGTERM")
    if report["exit_code"] != 0:
        broken.append(f"the server exited with {report['exit_code']}")
    if report["sigterm_to_exit_seconds"] < args.drain_seconds * 0.9:
        broken.append(f"the server stopped {report['sigterm_to_exit_seconds']}s after SIGTERM, before its drain")
    if len(report["events"]) != len(FAULTS):
        broken.append(f"not every fault happened: {report['events']}")
    growth = report["rss_before_sigterm_mib"] - report["rss_after_warmup_mib"]
    if growth > args.max_rss_growth_mib:
        broken.append(f"RSS grew {growth:.1f} MiB under steady load (limit {args.max_rss_growth_mib})")
    return broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="at most this many reviews (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="spread the requests over this time; faults fire at fixed points of it "
                        "(default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive clients (default %(default)s)")
    parser.add_argument("--drain-seconds", type=float, default=2.0, help="the server's drain (default %(default)s)")
    parser.add_argument("--max-rss-growth-mib", type=float, default=32.0,
                        help="fail if RSS grows more than this between warm-up and SIGTERM (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sidecar-injector-soak-") as workdir:
        soak = Soak(args, Path(workdir))
        try:
            report = soak.run()
        except AssertionError as error:
            print(f"soak: {error}\n{soak.log_file.read_text()[-4000:]}", file=sys.stderr)
            return 1
        broken = check(report, args)
        report["broken"] = broken
        if broken:
            report["server_log_tail"] = soak.log_file.read_text()[-4000:]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>26}: {value}")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
