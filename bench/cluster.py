"""`python -m bench --cluster`: performance as the API server sees it, on a real cluster.

On the cluster in KUBECONFIG (scripts/local-cluster.sh's, typically), with the webhook installed
as operators install it (two replicas behind their Service; installed here from --image when it
is not installed already, and removed again after): a ReplicaSet creates --pods Pods in a
namespace the webhook serves and in one it does not, alternating, round after round, and each
round's creation rate is taken (first Pod object to last, read from the ReplicaSet's status).
Beside the ratio: the API server's own histogram of our webhook's calls
(apiserver_admission_webhook_admission_duration_seconds, from its /metrics, p50 and p99 from the
buckets) and the webhook's own (sidecar_injector_review_duration_seconds, summed over the
replicas), both as differences over the rounds with the webhook. The Pods select no node: the
burst is the API server's and the webhook's, not the kubelet's.

Targets (issue 14): creation throughput with the webhook at least 0.9x without; p99 as the API
server sees it under its 25 ms bucket, aiming at 5 ms.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
KUBECTL = os.environ.get("E2E_KUBECTL", "kubectl")
IMAGE = os.environ.get("E2E_APP_IMAGE", "busybox:1.36")
WEBHOOK = "sidecar-injector"
API_HISTOGRAM = "apiserver_admission_webhook_admission_duration_seconds"
OUR_HISTOGRAM = "sidecar_injector_review_duration_seconds"

Buckets = dict[float, float]  # upper bound -> cumulative count


def log(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 600) -> str:
    done = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"bench: `kubectl {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


def get(*args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def histogram(text: str, name: str, **labels: str) -> Buckets:
    """A histogram's cumulative buckets, summed over the series whose labels include ``labels``."""
    found: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            bound = float(sample.labels["le"])
            found[bound] = found.get(bound, 0.0) + sample.value
    return found


def minus(after: Buckets, before: Buckets) -> Buckets:
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def quantile(q: float, buckets: Buckets) -> float | None:
    """histogram_quantile's linear interpolation within the bucket holding the q-th observation."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower  # beyond the last finite bucket: its bound is all that can be said
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = bound, count
    return lower


@dataclass
class Cluster:
    pods: int
    rounds: int
    installed_here: str | None = None
    rates: dict[str, list[float]] = field(default_factory=lambda: {"with": [], "without": []})
    api: Buckets = field(default_factory=dict)
    ours: Buckets = field(default_factory=dict)
    version: str = ""


def install(image: str, workdir: Path, version: str) -> str | None:
    """Install the webhook (CLI certificates, the bench config) unless one is installed."""
    if kubectl("get", "mutatingwebhookconfiguration", WEBHOOK, "--ignore-not-found", "-o", "name").strip():
        log("using the webhook installed in the cluster")
        return None
    certs = workdir / "certs"
    run = [sys.executable, "-m", "webhook"]
    subprocess.run([*run, "certs", "--out", str(certs)], check=True, capture_output=True, cwd=REPO)
    rendered = subprocess.run([*run, "manifests", "--cert-dir", str(certs), "--config", str(REPO / "bench" /
                               "config.yaml"), "--image", image, "--kubernetes-version", version],
                              check=True, capture_output=True, text=True, cwd=REPO).stdout
    kubectl("apply", "-f", "-", input=rendered)
    kubectl("rollout", "status", f"deployment/{WEBHOOK}", "-n", WEBHOOK, "--timeout=300s", timeout=320)
    log(f"installed the webhook from {image}")
    return rendered


def uninstall(rendered: str) -> None:
    kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK, "--ignore-not-found", check=False)
    kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=rendered, check=False)


def _namespace(webhook: bool) -> str:
    name = f"bench-{'with' if webhook else 'without'}-{secrets.token_hex(3)}"
    labels = {"sidecar-injector.io/inject": "enabled"} if webhook else {}
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": name, "labels": labels}}))
    deadline = time.monotonic() + 60
    while not kubectl("get", "serviceaccount", "default", "-n", name, "--ignore-not-found", "-o", "name").strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: no default ServiceAccount in {name}")
        time.sleep(0.2)
    return name


def _gone(name: str) -> None:
    kubectl("delete", "namespace", name, "--wait=true", "--timeout=600s", timeout=620, check=False)


def create_round(pods: int, webhook: bool) -> float:
    """Pods per second while a ReplicaSet creates ``pods`` Pods (first to last Pod object)."""
    ns = _namespace(webhook)
    try:
        labels = {"bench": "cluster"}
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "bench", "namespace": ns},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"nodeSelector": {"bench.sidecar-injector.io/node": "none"},
                         "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"]}]}}}}))
        started = time.monotonic()
        kubectl("scale", "replicaset", "bench", "-n", ns, f"--replicas={pods}")
        while int(get("replicaset", "bench", "-n", ns).get("status", {}).get("replicas", 0)) < pods:
            if time.monotonic() - started > 900:
                raise SystemExit(f"bench: {pods} Pods were not created within 15 minutes")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        if webhook:
            sample = get("pods", "-n", ns, "-l", "bench=cluster")["items"][:20]
            assert all("sidecar-injector.io/status" in (p["metadata"].get("annotations") or {}) for p in sample), \
                "a Pod in the served namespace was not injected"
        return pods / elapsed
    finally:
        _gone(ns)


def _replica_metrics() -> str:
    """Every webhook replica's /metrics, concatenated (their histograms are summed)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # a scrape, not a review
    texts = []
    for pod in get("pods", "-n", WEBHOOK, "-l", "app.kubernetes.io/component=webhook")["items"]:
        ip = pod.get("status", {}).get("podIP")
        if ip and not pod["metadata"].get("deletionTimestamp"):
            with urllib.request.urlopen(f"https://{ip}:8443/metrics", context=context, timeout=10) as reply:
                texts.append(reply.read().decode())
    return "\n".join(texts)


def _api_metrics() -> str:
    return kubectl("get", "--raw", "/metrics")


def run_cluster(pods: int, rounds: int, image: str) -> Cluster:
    info = json.loads(kubectl("version", "-o", "json"))["serverVersion"]
    version = f"{info['major']}.{info['minor'].rstrip('+')}"
    result = Cluster(pods=pods, rounds=rounds, version=info.get("gitVersion", version))
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as scratch:
        rendered = install(image, Path(scratch), version)
        try:
            create_round(min(pods, 50), True)  # warm-up: connections, caches
            for index in range(rounds):
                for webhook in ((True, False) if index % 2 == 0 else (False, True)):
                    api_before, ours_before = _api_metrics(), _replica_metrics() if webhook else ""
                    rate = create_round(pods, webhook)
                    result.rates["with" if webhook else "without"].append(rate)
                    if webhook:
                        api = minus(histogram(_api_metrics(), API_HISTOGRAM, operation="CREATE", type="admit"),
                                    histogram(api_before, API_HISTOGRAM, operation="CREATE", type="admit"))
                        ours = minus(histogram(_replica_metrics(), OUR_HISTOGRAM), histogram(ours_before,
                                                                                             OUR_HISTOGRAM))
                        for total, part in ((result.api, api), (result.ours, ours)):
                            for bound, count in part.items():
                                total[bound] = total.get(bound, 0.0) + count
                    log(f"round {index + 1}/{rounds}: {'with' if webhook else 'without'} the webhook: "
                        f"{rate:.1f} Pods/s")
        finally:
            if rendered is not None:
                uninstall(rendered)
    return result


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.2f} ms"


def format_cluster(result: Cluster) -> str:
    with_, without = statistics.median(result.rates["with"]), statistics.median(result.rates["without"])
    ratio = with_ / without
    api_p50, api_p99 = quantile(0.5, result.api), quantile(0.99, result.api)
    ours_p50, ours_p99 = quantile(0.5, result.ours), quantile(0.99, result.ours)
    calls = max(result.api.values(), default=0)
    bounds = ", ".join(f"{b:g}" for b in sorted(result.api) if b != float("inf"))
    lines = [
        f"## Cluster: {result.pods} Pods per round, {result.rounds} alternating rounds ({result.version})",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| Pods/s with the webhook (median) | {with_:.1f} ({', '.join(f'{r:.1f}' for r in result.rates['with'])}) | |",
        f"| Pods/s without it (median) | {without:.1f} ({', '.join(f'{r:.1f}' for r in result.rates['without'])}) | |",
        f"| with / without | {ratio:.2f}x | >= 0.9x: {'met' if ratio >= 0.9 else 'NOT met'} |",
        f"| API server's p50 / p99 of our webhook ({int(calls)} calls) | {_ms(api_p50)} / {_ms(api_p99)} | "
        f"p99 < 25 ms: {'met' if api_p99 is not None and api_p99 < 0.025 else 'NOT met'} |",
        f"| the webhook's own p50 / p99 | {_ms(ours_p50)} / {_ms(ours_p99)} | |",
        "",
        f"The API server's histogram has buckets at {bounds} s: its quantiles are interpolated within "
        "them (a p99 in the first bucket reads as a share of 5 ms). Ours resolve both sides of 5 and 25 ms.",
    ]
    return "\n".join(lines) + "\n"


def main(pods: int, rounds: int, image: str, markdown: Path | None) -> int:
    result = run_cluster(pods, rounds, image)
    text = format_cluster(result)
    print(text)
    if markdown:
        markdown.write_text(text)
    return 0
