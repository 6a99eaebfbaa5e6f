"""Servers under test and the load generators that drive them (loopback only, bounded runs).

Load generator: ``wrk`` (one thread, keep-alive connections, ``bench/check.lua`` checks every
response and writes a sample of bodies that Python then verifies in full). Without wrk, a
Python asyncio keep-alive client does the same and verifies every response itself (it is
much slower than wrk, so it can be the bottleneck against the floor; the report says so).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.verify import BENCH_DIR, Fixture, VerificationError, verify_response

REPO = BENCH_DIR.parent
HOST = "127.0.0.1"  # loopback only
CHECK_LUA = BENCH_DIR / "check.lua"
START_TIMEOUT = 30.0
VARY_PLACEHOLDER = "BENCHVARY000000"  # check.lua replaces it per request (BENCH_VARY)
# Each wrk run numbers its varied values from a base of its own, so no value repeats across
# the runs (warm-up, rounds, RSS steps) that one server sees: "every body distinct" holds for
# the server's whole life, not only within one run (100 million requests per run at most).
_VARY_BASES = itertools.count(0, 100_000_000)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pin(cores: tuple[int, ...] | None) -> Any:
    """A preexec_fn that pins the child (and every process it starts) to ``cores``."""
    if not cores:
        return None
    return lambda: os.sched_setaffinity(0, cores)


def descendants(pid: int) -> list[int]:
    """pid and all its descendants (workers of a supervisor), via /proc children lists."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    queue += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of pid and its descendants."""
    total = 0.0
    for each in descendants(pid):
        try:
            with open(f"/proc/{each}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            continue
    return total


def rss_kib(pid: int, with_children: bool = False) -> int:
    total = 0
    for each in descendants(pid) if with_children else [pid]:
        try:
            with open(f"/proc/{each}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass
class ServerProc:
    """A server under test, started by us; stopped by its own pid only."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path
    cores: tuple[int, ...] | None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}/mutate"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_command(kind: str, port: int, cert_dir: Path, config: Path, floor_answers: list[str],
                   workers: int = 1, log_level: str = "info", extra: tuple[str, ...] = ()) -> list[str]:
    py = sys.executable
    if kind == "floor":
        answers = [arg for answer in floor_answers for arg in ("--answer", answer)]
        return [py, "-m", "bench.floor", "--port", str(port), "--cert-dir", str(cert_dir), *answers, "--workers", "1"]
    if kind == "ours":
        # `sidecar-injector serve`, through `python -m webhook` so the venv's interpreter is used.
        return [py, "-m", "webhook", "serve", "--host", HOST, "--port", str(port), "--cert-dir", str(cert_dir),
                "--config", str(config), "--workers", str(workers), "--log-level", log_level,
                "--drain-seconds", "0", *extra]
    if kind == "kopf":
        return [py, "-m", "bench.kopf_peer", "--port", str(port), "--cert-dir", str(cert_dir), "--config", str(config)]
    raise ValueError(kind)


def start_server(name: str, command: list[str], port: int, work_dir: Path, cores: tuple[int, ...] | None,
                 ca_file: Path, fixture: Fixture) -> ServerProc:
    log_file = work_dir / f"{name}.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=pin(cores))
    server = ServerProc(name, port, process, log_file, cores)
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} during startup:\n{server.log_tail()}")
        try:
            status, body = post_once(port, ca_file, fixture.raw)
            if status == 200:
                verify_response(body, fixture)
                return server
        except OSError as error:
            last = error
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not answer within {START_TIMEOUT}s ({last}):\n{server.log_tail()}")


def client_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def request_bytes(port: int, body: bytes) -> bytes:
    head = (f"POST /mutate HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _read_response(sock: ssl.SSLSocket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next((int(v) for k, _, v in (line.partition(b":") for line in lines[1:])
                   if k.strip().lower() == b"content-length"), 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed in the middle of the body")
        rest += chunk
    return status, rest[:length]


def post_once(port: int, ca_file: Path, body: bytes) -> tuple[int, bytes]:
    with socket.create_connection((HOST, port), timeout=10) as raw, \
            client_context(ca_file).wrap_socket(raw, server_hostname=HOST) as tls:
        tls.sendall(request_bytes(port, body))
        return _read_response(tls)


def negotiated(port: int, ca_file: Path) -> str:
    """TLS version and cipher a default client gets (to show every server uses the same)."""
    with socket.create_connection((HOST, port), timeout=10) as raw, \
            client_context(ca_file).wrap_socket(raw, server_hostname=HOST) as tls:
        cipher = tls.cipher()
        return f"{tls.version()} {cipher[0] if cipher else '?'}"


@dataclass
class LoadResult:
    server: str
    fixture: str
    client: str
    duration_s: float
    ok: int  # responses that passed the per-response check
    bad: int  # non-200 or failed check, plus socket errors
    p50_ms: float
    p99_ms: float
    max_ms: float
    sampled: int  # bodies verified in full in Python
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(server: ServerProc, fixture: Fixture, files: dict[str, Path], work_dir: Path, duration: float,
            connections: int, client_cores: tuple[int, ...] | None, limit: int = 0, sample_every: int = 200,
            exact_patch: bool = True, vary: str = "") -> LoadResult:
    """One wrk run; every response checked in Lua, sampled bodies verified here in full.

    ``vary``: "" sends the fixture as is; "label" gives every request a label value of its own
    (every body distinct); "uid" a uid of its own (identical but for the uid). See check.lua.
    """
    sample_prefix = work_dir / f"sample-{server.name}-{fixture.name}-{time.monotonic_ns()}"
    done_file = sample_prefix.with_name(sample_prefix.name + ".done")
    body_file = {"": files["body"], "label": files.get("distinct"), "uid": files.get("uids")}[vary]
    env = dict(os.environ, BENCH_BODY=str(body_file), BENCH_UID=fixture.uid, BENCH_DONE=str(done_file),
               BENCH_VARY=vary, BENCH_VARY_BASE=str(next(_VARY_BASES)),
               BENCH_PATCH=str(files["patch"]) if exact_patch else "", BENCH_SAMPLE=str(sample_prefix),
               BENCH_SAMPLE_EVERY=str(sample_every), BENCH_SAMPLE_MAX="40", BENCH_LIMIT=str(limit))
    seconds = max(1, round(duration)) if not limit else 600
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(CHECK_LUA), server.url]
    cpu_before = cpu_seconds(server.pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, cwd=work_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=pin(client_cores))
    if limit:
        # The Lua thread stops at the limit, but wrk's main thread sleeps for all of -d: wake it.
        deadline = time.monotonic() + seconds
        while process.poll() is None and not done_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=seconds + 60)
    done_file.unlink(missing_ok=True)
    server_cpu = cpu_seconds(server.pid) - cpu_before
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child reaped here
    client_cpu = (children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime - children_before.ru_stime)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.decode(errors='replace')}")
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.decode(errors='replace')}\n{err.decode(errors='replace')}")
    data = orjson.loads(line.removeprefix("BENCH_RESULT "))
    sampled = 0
    for path in sorted(work_dir.glob(sample_prefix.name + ".*")):
        for body in path.read_bytes().splitlines():
            if vary == "uid":  # Lua matched the uid to a request it sent; the rest is checked as usual
                body = with_fixture_uid(body, fixture)
            try:
                verify_response(body, fixture)
            except VerificationError as error:  # the run does not count
                raise VerificationError(f"{server.name}: {error}; the response began {body[:120]!r}") from None
            sampled += 1
        path.unlink()
    errors = data["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    return LoadResult(
        server=server.name, fixture=fixture.name, client="wrk", duration_s=data["duration_us"] / 1e6,
        ok=data["ok"], bad=data["bad_status"] + data["bad_body"] + socket_errors,
        p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000, max_ms=data["max_us"] / 1000,
        sampled=sampled, server_cpu_s=server_cpu, client_cpu_s=client_cpu, errors=errors,
    )


def with_fixture_uid(body: bytes, fixture: Fixture) -> bytes:
    """A response to a uid-varied request, with the fixture's uid put back (for verify_response)."""
    try:
        review = orjson.loads(body)
        uid = review["response"]["uid"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as error:
        raise VerificationError(f"not an AdmissionReview response: {error}") from None
    if not (isinstance(uid, str) and len(uid) == len(VARY_PLACEHOLDER) and uid.startswith("v") and uid[1:].isdigit()):
        raise VerificationError(f"response uid {uid!r} is not one the load generator sends")
    review["response"]["uid"] = fixture.uid
    return orjson.dumps(review)


async def _python_connection(port: int, context: ssl.SSLContext, payload: bytes, fixture: Fixture, deadline: float,
                             remaining: list[int], latencies: list[float], counts: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port, ssl=context, server_hostname=HOST)
    try:
        while time.perf_counter() < deadline and remaining[0] != 0:
            remaining[0] -= 1
            started = time.perf_counter()
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split()[1])
            length = next((int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:])
                           if k.strip().lower() == b"content-length"), 0)
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            try:
                if status != 200:
                    raise VerificationError(f"HTTP {status}")
                verify_response(body, fixture)  # every response (identical bytes are decided once)
                counts["ok"] += 1
            except VerificationError:
                counts["bad"] += 1
    finally:
        writer.close()


def run_python_client(server: ServerProc, fixture: Fixture, ca_file: Path, duration: float, connections: int,
                      client_cores: tuple[int, ...] | None, limit: int = 0) -> LoadResult:
    """The fallback load generator: asyncio keep-alive connections, every response verified."""
    if client_cores:
        os.sched_setaffinity(0, client_cores)
    payload = request_bytes(server.port, fixture.raw)
    context = client_context(ca_file)
    latencies: list[float] = []
    counts = {"ok": 0, "bad": 0}
    remaining = [limit if limit else -1]
    cpu_before = cpu_seconds(server.pid)
    own_before = time.process_time()

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + (duration if not limit else 600)
        await asyncio.gather(*(_python_connection(server.port, context, payload, fixture, deadline, remaining,
                                                  latencies, counts) for _ in range(connections)))
        return time.perf_counter() - started

    try:
        elapsed = asyncio.run(main())
    finally:
        if client_cores:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000 if latencies else 0.0

    return LoadResult(server=server.name, fixture=fixture.name, client="python", duration_s=elapsed, ok=counts["ok"],
                      bad=counts["bad"], p50_ms=statistics.median(latencies) * 1000 if latencies else 0.0,
                      p99_ms=pct(0.99), max_ms=latencies[-1] * 1000 if latencies else 0.0, sampled=counts["ok"],
                      server_cpu_s=cpu_seconds(server.pid) - cpu_before,
                      client_cpu_s=time.process_time() - own_before)
