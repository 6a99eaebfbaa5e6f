"""The benchmark: one command, side-by-side ratios, every counted response verified.

    .venv/bin/python -m bench            # full run (~5 minutes on 2 cores)
    .venv/bin/python -m bench --quick    # ~2 minutes: shorter runs, fewer RSS requests

What it does, in order (see bench/README.md):

1. the in-process micro-benchmark (bench.micro), as ratios to orjson.loads;
2. starts three HTTPS servers on 127.0.0.1 with the same certificate: the floor (bench.floor),
   this project (`sidecar-injector serve`, 1 worker) and the kopf peer (bench.kopf_peer);
3. drives them alternately, round after round, with wrk (or the Python client) on the typical
   and the big Pod: servers pinned to core 0, the client to core 1;
4. one worker against two (both cores for the server, the client shares them);
5. RSS of a fresh server after 1,000 and after 100,000 requests;
6. prints the report (Markdown) and, with --markdown FILE, writes it there too.

Exit status 1 if any response failed verification (such runs are reported, never counted).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import orjson

from bench import load
from bench.micro import MicroResult, format_micro, run_micro
from bench.verify import BENCH_CONFIG, FIXTURES, Fixture, VerificationError, load_config, load_fixture
from webhook.pki import write_bundle
from webhook.server.answers import answer

SERVERS = ("floor", "ours", "kopf")
TARGETS = {"floor_ratio": 0.25, "kopf_ratio": 15.0, "p99_ms": 25.0, "big_inprocess_us": 2000.0, "scaling": 1.6,
           "rss_growth": 0.10}


@dataclass
class Plan:
    quick: bool
    rounds: int
    duration: float
    warmup: float
    connections: int
    rss_steps: tuple[int, ...]
    micro_iterations: int
    micro_repeats: int
    kopf: bool
    client: str
    log_level: str
    scaling: bool
    rss: bool


@dataclass
class Report:
    plan: Plan
    env: dict[str, str] = field(default_factory=dict)
    micro: list[MicroResult] = field(default_factory=list)
    runs: list[tuple[int, load.LoadResult]] = field(default_factory=list)  # (round, result)
    vary: str = ""  # the main load's BENCH_VARY: "label" (every body distinct) with wrk
    cache_runs: list[tuple[int, load.LoadResult]] = field(default_factory=list)  # ours-uids, ours-nocache
    scaling: list[tuple[int, load.LoadResult]] = field(default_factory=list)
    rss: list[tuple[int, int]] = field(default_factory=list)  # (requests served, RSS KiB)
    capacity: list[float] = field(default_factory=list)  # CPU of 2 busy processes / 1 alone
    tls: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(plan: Plan) -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = "not installed"
    if load.have_wrk():
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk = (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0] if (done.stdout or done.stderr) else "?"
    git = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=load.REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "webhook"],
                               cwd=load.REPO, capture_output=True, text=True, check=True).stdout.split("\n")
        changed = sorted(line[3:] for line in dirty if line.strip())
        git = head + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")
    packages = ", ".join(f"{name} {_version(name)}" for name in
                         ("uvicorn", "httptools", "uvloop", "orjson", "msgspec", "pybase64", "fastapi", "pydantic",
                          "jsonpatch", "kopf", "aiohttp"))
    return {
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "mode": "quick" if plan.quick else "full",
        "cores": f"{os.cpu_count()} (nproc), usable {len(os.sched_getaffinity(0))}",
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": packages,
        "load generator": plan.client if plan.client == "python" else f"{wrk}, 1 thread, Lua checks (bench/check.lua)",
        "git": git,
    }


def _prepare(work: Path, config_path: Path) -> tuple[Path, dict[str, Fixture], dict[str, dict[str, Path]], list[str]]:
    cert_dir = work / "certs"
    write_bundle(cert_dir, None, None, [load.HOST])
    config = load_config(config_path)
    fixtures = {name: load_fixture(name, config) for name in FIXTURES}
    files: dict[str, dict[str, Path]] = {}
    floor_answers = []
    for name, fixture in fixtures.items():
        reply = answer(fixture.raw, config)
        patch = orjson.loads(reply.body)["response"]["patch"]
        body_file, answer_file, patch_file = work / f"{name}.body.json", work / f"{name}.answer.json", work / f"{name}.patch"
        body_file.write_bytes(fixture.raw)
        answer_file.write_bytes(reply.body)
        patch_file.write_text(patch)
        files[name] = {"body": body_file, "answer": answer_file, "patch": patch_file}
        floor_answers.append(f"{len(fixture.raw)}:{answer_file}")
        # Variants for check.lua's BENCH_VARY: an extra label whose value changes per request
        # (same uid, same patch: labels are not in it), and the uid itself changing per request.
        review = orjson.loads(fixture.raw)
        review["request"]["object"]["metadata"].setdefault("labels", {})["bench-request"] = load.VARY_PLACEHOLDER
        distinct = orjson.dumps(review)
        review = orjson.loads(fixture.raw)
        review["request"]["uid"] = load.VARY_PLACEHOLDER
        files[name]["distinct"], files[name]["uids"] = work / f"{name}.distinct.json", work / f"{name}.uids.json"
        files[name]["distinct"].write_bytes(distinct)
        files[name]["uids"].write_bytes(orjson.dumps(review))
        varied = orjson.loads(distinct.replace(load.VARY_PLACEHOLDER.encode(), b"v00000000000001"))
        if orjson.loads(answer(orjson.dumps(varied), config).body)["response"]["patch"] != patch:
            raise RuntimeError(f"{name}: a label changes the patch; the distinct-bodies load cannot use the exact check")
        floor_answers.append(f"{len(distinct)}:{answer_file}")  # the floor picks its answer by body length
    return cert_dir, fixtures, files, floor_answers


_SPIN = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
end, n = time.perf_counter() + float(sys.argv[2]), 0
while time.perf_counter() < end:
    for _ in range(10000):
        n += 1
print(n)
"""


def cpu_capacity(seconds: float = 2.0) -> float | None:
    """How much CPU two busy processes get together, as a multiple of one alone.

    A VM's second vCPU need not be a whole core (shared with a sibling thread or a busy
    host); this bounds what any 2-worker server can reach here.
    """
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None

    def spin(*cores: int) -> list[int]:
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN, str(core), str(seconds)], stdout=subprocess.PIPE,
                                  text=True) for core in cores]
        return [int(p.communicate()[0]) for p in procs]

    alone = spin(usable[0])[0]
    together = sum(spin(usable[0], usable[1]))
    return together / alone if alone else None


def _cores() -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        return None, None
    return (usable[0],), (usable[1],)


def _median_range(values: list[float]) -> tuple[float, float, float]:
    return (statistics.median(values), min(values), max(values)) if values else (0.0, 0.0, 0.0)


def _fmt(values: list[float], digits: int = 0, unit: str = "") -> str:
    med, lo, hi = _median_range(values)
    return f"{med:.{digits}f}{unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def run(plan: Plan, keep: bool = False) -> Report:
    started = time.monotonic()
    report = Report(plan)
    report.env = environment(plan)
    log(f"in-process micro-benchmark ({plan.micro_iterations} iterations x {plan.micro_repeats} repeats)")
    report.micro = run_micro(plan.micro_iterations, plan.micro_repeats)
    server_cores, client_cores = _cores()
    if server_cores is None:
        report.notes.append("fewer than 2 usable cores: servers and client are not pinned")
    work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    servers: dict[str, load.ServerProc] = {}
    try:
        cert_dir, fixtures, files, floor_answers = _prepare(work, BENCH_CONFIG)
        ca_file = cert_dir / "ca.crt"

        def start(name: str, kind: str, cores: tuple[int, ...] | None, workers: int = 1,
                  extra: tuple[str, ...] = ()) -> load.ServerProc:
            port = load.free_port()
            command = load.server_command(kind, port, cert_dir, BENCH_CONFIG, floor_answers, workers, plan.log_level,
                                          extra)
            log(f"starting {name}: {' '.join(Path(c).name if c == sys.executable else c for c in command)}")
            server = load.start_server(name, command, port, work, cores, ca_file, fixtures["typical"])
            servers[name] = server
            report.tls[name] = load.negotiated(port, ca_file)
            return server

        # Our server keeps answers to reviews identical but for their uid, so the main load sends
        # every request a body of its own (a unique label value): what the targets are judged on.
        report.vary = "label" if plan.client == "wrk" else ""
        if not report.vary:
            report.notes.append("the Python client sends one body again and again: our server answers repeats "
                                "from its review cache, so its figures are those of identical reviews")

        def drive(server: load.ServerProc, fixture: Fixture, duration: float, cores: tuple[int, ...] | None,
                  limit: int = 0, vary: str | None = None) -> load.LoadResult:
            if plan.client == "python":
                return load.run_python_client(server, fixture, ca_file, duration, plan.connections, cores, limit)
            exact = server.name != "kopf"  # kopf builds its own (different, equivalent) patch
            return load.run_wrk(server, fixture, files[fixture.name], work, duration, plan.connections, cores, limit,
                                exact_patch=exact, vary=report.vary if vary is None else vary)

        names = [name for name in SERVERS if name != "kopf" or plan.kopf]
        for name in list(names):
            try:
                start(name, name, server_cores)
            except (RuntimeError, VerificationError) as error:
                if name != "kopf":
                    raise
                report.notes.append(f"kopf peer skipped: {str(error).splitlines()[0]}")
                names.remove("kopf")
        # The review cache side by side (wrk only): ours on bodies identical but for the uid (the
        # Pods of one ReplicaSet or Job: cache hits) and ours with the cache off on distinct bodies.
        cache_loads: list[tuple[str, str]] = []
        if plan.client == "wrk":
            start("ours-nocache", "ours", server_cores, extra=("--no-review-cache",))
            cache_loads = [("ours", "uid"), ("ours-nocache", "label")]
        for name in names:  # warm-up, not counted
            for fixture in fixtures.values():
                drive(servers[name], fixture, plan.warmup, client_cores)
        if cache_loads:
            drive(servers["ours-nocache"], fixtures["typical"], plan.warmup, client_cores)

        for round_no in range(plan.rounds):
            order = names[round_no % len(names):] + names[:round_no % len(names)]
            log(f"round {round_no + 1}/{plan.rounds}: {' -> '.join(order)}")
            for fixture in fixtures.values():
                for name in order:
                    result = _checked(report, lambda: drive(servers[name], fixture, plan.duration, client_cores),
                                      name, fixture.name)
                    if result is not None:
                        report.runs.append((round_no, result))
            for name, vary in (cache_loads if round_no % 2 == 0 else cache_loads[::-1]):
                result = _checked(report, lambda: drive(servers[name], fixtures["typical"], plan.duration,
                                                        client_cores, vary=vary), f"{name}/{vary}", "typical")
                if result is not None:
                    result.server = f"{name}/{vary}"
                    report.cache_runs.append((round_no, result))

        if plan.scaling:
            two = start("ours-2w", "ours", None, workers=2)
            drive(two, fixtures["typical"], plan.warmup, None)
            for round_no in range(plan.rounds):
                log(f"scaling round {round_no + 1}/{plan.rounds} (CPU capacity probe first: 2 s)")
                capacity = cpu_capacity(1.0)
                if capacity is not None:
                    report.capacity.append(capacity)
                pair = [("ours", client_cores), ("ours-2w", None)]
                for name, cores in (pair if round_no % 2 == 0 else pair[::-1]):
                    result = _checked(report, lambda: drive(servers[name], fixtures["typical"], plan.duration, cores),
                                      name, "typical")
                    if result is not None:
                        report.scaling.append((round_no, result))
            two.stop()

        if plan.rss:
            for name in list(servers):
                servers.pop(name).stop()  # a quiet machine for the long run
            fresh = start("ours-rss", "ours", server_cores)
            served = 0
            report.rss.append((0, load.rss_kib(fresh.pid)))
            for step in plan.rss_steps:
                log(f"RSS: serving up to {step} requests")
                result = _checked(report, lambda: drive(fresh, fixtures["typical"], 0, client_cores, step - served),
                                  "ours-rss", "typical")
                if result is None:
                    break
                served += result.ok + result.bad
                report.rss.append((served, load.rss_kib(fresh.pid)))
    finally:
        for server in servers.values():
            server.stop()
        if keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - started
    return report


def _checked(report: Report, action: Callable[[], load.LoadResult], server: str,
             fixture: str) -> load.LoadResult | None:
    """Run one load run; a verification failure is recorded and the run is not counted."""
    try:
        result = action()
    except VerificationError as error:
        report.failures.append(f"{server}/{fixture}: sampled response failed verification: {error}")
        return None
    log(f"  {server:8} {fixture:8} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
        f"server CPU {result.server_cpu_s / result.duration_s:4.0%}  client CPU {result.client_cpu_s / result.duration_s:4.0%}"
        f"  ok {result.ok}  bad {result.bad}  verified {result.sampled}")
    if result.bad:
        report.failures.append(f"{server}/{fixture}: {result.bad} responses failed the per-response check "
                               f"({result.errors})")
    return result


# -- the report ------------------------------------------------------------------------------


def _by(runs: list[tuple[int, load.LoadResult]], server: str, fixture: str) -> dict[int, load.LoadResult]:
    return {r: res for r, res in runs if res.server == server and res.fixture == fixture}


def _per_cpu(result: load.LoadResult) -> float:
    """Verified responses per server CPU-second: throughput with idle time taken out."""
    return result.ok / result.server_cpu_s if result.server_cpu_s > 0 else 0.0


def _ratio(runs: list[tuple[int, load.LoadResult]], fixture: str, top: str, bottom: str,
           metric: Callable[[load.LoadResult], float] = lambda r: r.rps) -> list[float]:
    a, b = _by(runs, top, fixture), _by(runs, bottom, fixture)
    return [metric(a[r]) / metric(b[r]) for r in sorted(a) if r in b and metric(b[r]) > 0]


def format_report(report: Report) -> str:
    plan = report.plan
    out: list[str] = []
    out.append("### Machine and run\n")
    out += [f"- **{key}**: {value}" for key, value in report.env.items()]
    for name, tls in report.tls.items():
        out.append(f"- **TLS** {name}: {tls}")
    pinning = "servers on core 0, client on core 1" if _cores()[0] else "not pinned"
    out.append(f"- **plan**: {plan.rounds} alternating rounds of {plan.duration:g} s per server and fixture "
               f"(after {plan.warmup:g} s warm-up), {plan.connections} keep-alive connections, {pinning}; "
               f"server log level {plan.log_level}; total {report.seconds:.0f} s")
    if report.vary == "label":
        out.append("- **load**: every request's body is distinct (wrk gives each one a unique value of an extra "
                   "label, `bench-request`; same uid, same expected patch), so our review cache never hits; "
                   "scaling and RSS runs too. The review-cache table shows bodies identical but for the uid.")
    out += [f"- note: {note}" for note in report.notes]

    out.append("\n### In-process handler (ratio to orjson.loads of the same body; median (min-max) of "
               f"{plan.micro_repeats} repeats)\n")
    out.append(format_micro(report.micro))

    servers = [s for s in SERVERS if any(res.server == s for _, res in report.runs)]
    for fixture in FIXTURES:
        size = next((m.size for m in report.micro if m.fixture == fixture), 0)
        out.append(f"\n### Load: {fixture} Pod ({size / 1000:.1f} KB), 1 worker, {plan.connections} connections "
                   "(median (min-max) over rounds)\n")
        out.append("| server | req/s | p50 ms | p99 ms | server CPU | server CPU µs/req | client CPU "
                   "| verified in full | failed |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for server in servers:
            results = list(_by(report.runs, server, fixture).values())
            if not results:
                continue
            server_cpu = [r.server_cpu_s / r.duration_s for r in results]
            client_cpu = [r.client_cpu_s / r.duration_s for r in results]
            out.append(f"| {server} | {_fmt([r.rps for r in results])} | {_fmt([r.p50_ms for r in results], 2)} "
                       f"| {_fmt([r.p99_ms for r in results], 2)} | {statistics.median(server_cpu):.0%} "
                       f"| {_fmt([1e6 / _per_cpu(r) for r in results if _per_cpu(r)])} "
                       f"| {statistics.median(client_cpu):.0%} | {sum(r.sampled for r in results)} "
                       f"| {sum(r.bad for r in results)} |")
        out.append("")
        out.append("| ratio (same round) | req/s: median (min-max) | req per server CPU-second: median (min-max) |")
        out.append("|---|---|---|")
        for top, bottom in (("ours", "floor"), ("ours", "kopf"), ("kopf", "floor")):
            values = _ratio(report.runs, fixture, top, bottom)
            if values:
                per_cpu = _ratio(report.runs, fixture, top, bottom, _per_cpu)
                out.append(f"| {top} / {bottom} | {_fmt(values, 3)} | {_fmt(per_cpu, 3)} |")

    if report.cache_runs:
        out.append("\n### Review cache: typical Pod, 1 worker, " f"{plan.connections} connections, same rounds as above\n")
        out.append("Our server keeps answers to reviews that are identical but for `request.uid` (the Pods of one "
                   "ReplicaSet scale-up or Job). **(b)** is the load of the tables above: every request's body is "
                   "distinct (a unique label value), so no review hits the cache (after a run of misses it idles "
                   "and looks up one review in 8, so that a burst of repeats wakes it); the targets are judged on it. "
                   "**(a)** sends bodies identical but for a unique uid per request: every review after the first "
                   "is a cache hit, which is what a rollout sees, not what a stream of unrelated Pods sees.\n")
        out.append("| server and load | req/s | p50 ms | p99 ms | server CPU µs/req | / floor (b), req/s | "
                   "/ floor (b), per CPU-s | / kopf (b), req/s | failed |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        main = {"floor": _by(report.runs, "floor", "typical"), "kopf": _by(report.runs, "kopf", "typical")}
        rows = (("ours, (a) identical but for the uid: cache hits", _by(report.cache_runs, "ours/uid", "typical")),
                ("ours, (b) every body distinct: no hits (cache idle)", _by(report.runs, "ours", "typical")),
                ("ours --no-review-cache, (b) every body distinct",
                 _by(report.cache_runs, "ours-nocache/label", "typical")))
        for label, by_round in rows:
            results = list(by_round.values())
            if not results:
                continue

            def vs(base: str, metric: Callable[[load.LoadResult], float] = lambda r: r.rps) -> str:
                values = [metric(by_round[r]) / metric(main[base][r]) for r in sorted(by_round)
                          if r in main[base] and metric(main[base][r]) > 0]
                return _fmt(values, 3) if values else "-"

            out.append(f"| {label} | {_fmt([r.rps for r in results])} | {_fmt([r.p50_ms for r in results], 2)} "
                       f"| {_fmt([r.p99_ms for r in results], 2)} "
                       f"| {_fmt([1e6 / _per_cpu(r) for r in results if _per_cpu(r)])} "
                       f"| {vs('floor')} | {vs('floor', _per_cpu)} | {vs('kopf')} | {sum(r.bad for r in results)} |")

    if report.scaling:
        one = list(_by(report.scaling, "ours", "typical").values())
        two = list(_by(report.scaling, "ours-2w", "typical").values())
        ratio = _ratio(report.scaling, "typical", "ours-2w", "ours")
        out.append("\n### Scaling: typical Pod, 1 worker (core 0, client on core 1) vs 2 workers "
                   "(both cores, the client shares them)\n")
        out.append("| server | req/s | p50 ms | p99 ms | server CPU | server CPU µs/req | client CPU |")
        out.append("|---|---|---|---|---|---|---|")
        for name, results in (("1 worker", one), ("2 workers", two)):
            out.append(f"| {name} | {_fmt([r.rps for r in results])} | {_fmt([r.p50_ms for r in results], 2)} "
                       f"| {_fmt([r.p99_ms for r in results], 2)} "
                       f"| {statistics.median([r.server_cpu_s / r.duration_s for r in results]):.0%} "
                       f"| {_fmt([1e6 / _per_cpu(r) for r in results if _per_cpu(r)])} "
                       f"| {statistics.median([r.client_cpu_s / r.duration_s for r in results]):.0%} |")
        out.append(f"\n2 workers / 1 worker (same round): {_fmt(ratio, 2)}")
        if report.capacity:
            out.append(f"\nCPU capacity of this machine: two busy processes, one per core, got "
                       f"{_fmt(report.capacity, 2)} x the CPU of one alone (pinned spin loops, 1 s each, at the start "
                       "of every scaling round): the ceiling for any 2-worker server here, before the client takes "
                       "its share.")

    if report.rss:
        out.append("\n### Memory: RSS of a fresh 1-worker server (typical Pod)\n")
        out.append("| requests served | RSS MiB |")
        out.append("|---|---|")
        out += [f"| {served:,} | {kib / 1024:.1f} |" for served, kib in report.rss]

    out.append("\n### Targets\n")
    out += _targets(report)
    if report.failures:
        out.append("\n### FAILED VERIFICATION (not counted)\n")
        out += [f"- {failure}" for failure in report.failures]
    return "\n".join(out) + "\n"


def _targets(report: Report) -> list[str]:
    lines = ["| target | measured | met |", "|---|---|---|"]

    def row(name: str, measured: str, met: bool | None) -> None:
        lines.append(f"| {name} | {measured} | {'n/a' if met is None else ('yes' if met else '**no**')} |")

    floor = _ratio(report.runs, "typical", "ours", "floor")
    row(f"typical: ours >= {TARGETS['floor_ratio']} x floor (req/s)", _fmt(floor, 3) if floor else "not run",
        statistics.median(floor) >= TARGETS["floor_ratio"] if floor else None)
    floor_cpu = _ratio(report.runs, "typical", "ours", "floor", _per_cpu)
    row(f"typical: ours >= {TARGETS['floor_ratio']} x floor (req per server CPU-second; stricter when the floor "
        "idles)", _fmt(floor_cpu, 3) if floor_cpu else "not run",
        statistics.median(floor_cpu) >= TARGETS["floor_ratio"] if floor_cpu else None)
    kopf = _ratio(report.runs, "typical", "ours", "kopf")
    row(f"typical: ours >= {TARGETS['kopf_ratio']:g} x kopf", _fmt(kopf, 1) if kopf else "not run",
        statistics.median(kopf) >= TARGETS["kopf_ratio"] if kopf else None)
    p99 = [r.p99_ms for r in _by(report.runs, "ours", "typical").values()]
    row(f"typical: p99 at {report.plan.connections} connections < {TARGETS['p99_ms']:g} ms",
        _fmt(p99, 2, " ms") if p99 else "not run", statistics.median(p99) < TARGETS["p99_ms"] if p99 else None)
    big = next((m for m in report.micro if m.fixture == "big"), None)
    row(f"big Pod in-process (answer) < {TARGETS['big_inprocess_us']:g} µs",
        f"{big.micros['answer']:.0f} µs" if big else "not run",
        big.micros["answer"] < TARGETS["big_inprocess_us"] if big else None)
    scaling = _ratio(report.scaling, "typical", "ours-2w", "ours")
    row(f"2 workers >= {TARGETS['scaling']} x 1 worker", _fmt(scaling, 2) if scaling else "not run",
        statistics.median(scaling) >= TARGETS["scaling"] if scaling else None)
    rss = dict(report.rss)
    first = next((kib for served, kib in report.rss if served >= 1000), None)
    last = report.rss[-1] if report.rss else None
    if first and last and last[0] > 1000:
        growth = last[1] / first - 1
        row(f"RSS after {last[0]:,} within {TARGETS['rss_growth']:.0%} of RSS after ~1,000",
            f"{first / 1024:.1f} -> {last[1] / 1024:.1f} MiB ({growth:+.1%})", growth <= TARGETS["rss_growth"])
    elif not rss:
        row("RSS", "not run", None)
    return lines


def plan_from(args: argparse.Namespace) -> Plan:
    client = args.client
    if client == "auto":
        client = "wrk" if load.have_wrk() else "python"
    if client == "wrk" and not load.have_wrk():
        raise SystemExit("wrk is not installed (apt-get install wrk), use --client python")
    kopf = not args.no_kopf
    if kopf:
        try:
            import kopf as _kopf  # noqa: F401
        except ImportError:
            kopf = False
    quick = args.quick
    return Plan(
        quick=quick,
        rounds=args.rounds or 5,
        duration=args.duration or (2.0 if quick else 5.0),
        warmup=1.0,
        connections=args.connections,
        rss_steps=(1000, 20000) if quick else (1000, 10000, 50000, 100000),
        micro_iterations=args.micro_iterations or (100 if quick else 300),
        micro_repeats=5 if quick else 9,
        kopf=kopf,
        client=client,
        log_level=args.log_level,
        scaling=not args.no_scaling,
        rss=not args.no_rss,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (~1-2 minutes): 2 s per run, RSS to 20,000")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 5)")
    parser.add_argument("--duration", type=float, help="whole seconds per load run (default 5, quick 2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (auto: wrk when installed)")
    parser.add_argument("--log-level", default="info", help="our server's --log-level (default info, as deployed)")
    parser.add_argument("--no-kopf", action="store_true", help="skip the kopf peer")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--no-rss", action="store_true")
    parser.add_argument("--micro-iterations", type=int)
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the report to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, certs)")
    parser.add_argument("--cluster", action="store_true",
                        help="instead: Pods/s with and without the webhook on the cluster in KUBECONFIG, and the "
                             "API server's latency histogram for it (bench/cluster.py)")
    parser.add_argument("--cluster-pods", type=int, default=1000, help="Pods per --cluster round (default 1000)")
    parser.add_argument("--image", default=os.environ.get("E2E_IMAGE", "localhost/sidecar-injector:dev"),
                        help="--cluster: the image to install the webhook from when it is not installed")
    args = parser.parse_args(argv)
    if args.cluster:
        from bench import cluster

        return cluster.main(args.cluster_pods, args.rounds or 3, args.image, args.markdown)
    plan = plan_from(args)
    if not plan.kopf and not args.no_kopf:
        log("kopf is not installed (pip install '.[bench]'): the kopf peer is skipped")
    report = run(plan, keep=args.keep)
    if not plan.kopf and not args.no_kopf:
        report.notes.append("kopf is not installed (pip install '.[bench]'): the kopf peer was skipped")
    text = format_report(report)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 1 if report.failures else 0
