#!/usr/bin/env python3
"""A rolling update of the webhook during a burst of Pod creations, and what it cost.

Usage:
  scripts/burst.py replicaset [--pods 1000] [--failure-policy Fail|Ignore] [--json FILE]
  scripts/burst.py job [--completions 1000] [--parallelism 100] [--json FILE]

Needs the webhook installed in the cluster of KUBECONFIG (the Deployment and the
MutatingWebhookConfiguration `sidecar-injector`, as the e2e suite's E2E_MODE=in-cluster installs
them) and kubectl (E2E_KUBECTL, else kubectl on PATH). Everything it creates lives in a namespace
of its own, removed at the end; the webhook's failurePolicy is put back as it was.

replicaset: a ReplicaSet scales from 0 to --pods while `kubectl rollout restart` replaces the
  webhook's replicas. Its Pods select no node, so the burst is the API server's and the
  webhook's alone (a node runs about a hundred Pods, not a thousand). Reported: Pods created,
  Pods injected, the FailedCreate Events the ReplicaSet controller saw (target 0: readiness, the
  preStop wait and the server's drain must keep the API server off a replica going away), and,
  under failurePolicy Ignore, the Pods created without their sidecar (target 0) beside what
  `sidecar-injector report` lists as missing (the same Pods).
job: a Job of --completions Pods, --parallelism at a time, with the e2e config's `batch` profile
  (a legacy sidecar that exits when the application is done, injected with runToCompletion:
  inject), while the webhook is restarted: it must complete with every Pod injected.

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KUBECTL = os.environ.get("E2E_KUBECTL", "kubectl")
IMAGE = os.environ.get("E2E_APP_IMAGE", "busybox:1.36")
WEBHOOK = "sidecar-injector"
STATUS = "sidecar-injector.io/status"


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 300) -> str:
    done = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"burst: `kubectl {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


def get(*args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json"))


def apply(obj: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def failure_policy(value: str | None = None) -> str:
    configuration = get("mutatingwebhookconfiguration", WEBHOOK)
    current: str = configuration["webhooks"][0]["failurePolicy"]
    if value is not None and value != current:
        ops = [{"op": "replace", "path": f"/webhooks/{i}/failurePolicy", "value": value}
               for i in range(len(configuration["webhooks"]))]
        kubectl("patch", "mutatingwebhookconfiguration", WEBHOOK, "--type=json", "-p", json.dumps(ops))
    return current


def namespace() -> str:
    name = f"burst-{secrets.token_hex(3)}"
    apply({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"sidecar-injector.io/inject": "enabled"}}})
    deadline = time.monotonic() + 60
    while not kubectl("get", "serviceaccount", "default", "-n", name, "--ignore-not-found", "-o", "name").strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"burst: no default ServiceAccount in {name}")
        time.sleep(0.5)
    return name


def restart_webhook() -> float:
    kubectl("rollout", "restart", f"deployment/{WEBHOOK}", "-n", WEBHOOK)
    return time.monotonic()


def wait_rollout() -> None:
    kubectl("rollout", "status", f"deployment/{WEBHOOK}", "-n", WEBHOOK, "--timeout=600s", timeout=620)


def failed_creates(ns: str, kind: str, name: str) -> int:
    events = get("events", "-n", ns, "--field-selector", f"involvedObject.kind={kind},involvedObject.name={name}")
    return sum(e.get("count") or 1 for e in events["items"] if e["reason"] == "FailedCreate")


def pods(ns: str, selector: str) -> list[dict[str, Any]]:
    return get("pods", "-n", ns, "-l", selector)["items"]


def injected(pod: dict[str, Any]) -> bool:
    return STATUS in (pod["metadata"].get("annotations") or {})


def replicaset(args: argparse.Namespace) -> dict[str, Any]:
    previous = failure_policy(args.failure_policy)
    ns = namespace()
    try:
        labels = {"burst": "replicaset"}
        apply({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "burst", "namespace": ns},
               "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
                   "metadata": {"labels": labels},
                   "spec": {"nodeSelector": {"burst.sidecar-injector.io/node": "none"},  # created, never run
                            "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"]}]}}}})
        started = time.monotonic()
        kubectl("scale", "replicaset", "burst", "-n", ns, f"--replicas={args.pods}")
        restarted = restart_webhook()
        deadline = started + args.timeout
        while True:
            status = get("replicaset", "burst", "-n", ns).get("status", {})
            if status.get("replicas", 0) >= args.pods or time.monotonic() > deadline:
                break
            time.sleep(1)
        created_in = time.monotonic() - started
        wait_rollout()
        rolled_in = time.monotonic() - restarted
        found = pods(ns, "burst=replicaset")
        without = [p["metadata"]["name"] for p in found if not injected(p)]
        report = subprocess.run([sys.executable, "-m", "webhook", "report", "-n", ns, "-o", "json",
                                 "--cluster-namespace", WEBHOOK], capture_output=True, text=True, cwd=REPO,
                                timeout=300)
        listed = sorted(p["name"] for g in json.loads(report.stdout or '{"groups": []}')["groups"]
                        for p in g["pods"] if p["state"] == "missing")
        return {"scenario": "replicaset", "failurePolicy": args.failure_policy, "pods_wanted": args.pods,
                "pods_created": len(found), "pods_injected": len(found) - len(without),
                "pods_without_sidecar": len(without), "failed_creates": failed_creates(ns, "ReplicaSet", "burst"),
                "report_missing": len(listed), "report_lists_exactly_those": listed == sorted(without),
                "seconds_to_create": round(created_in, 1), "seconds_to_roll_out": round(rolled_in, 1),
                "report_error": report.stderr.strip() if report.returncode not in (0, 1) else None}
    finally:
        failure_policy(previous)
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def job(args: argparse.Namespace) -> dict[str, Any]:
    ns = namespace()
    try:
        labels = {"burst": "job"}
        apply({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "burst", "namespace": ns},
               "spec": {"completions": args.completions, "parallelism": args.parallelism, "backoffLimit": 0,
                        "template": {"metadata": {"labels": labels,
                                                  "annotations": {"sidecar-injector.io/profiles": "batch"}},
                                     "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                              "containers": [{"name": "app", "image": IMAGE, "command": [
                                                  "sh", "-c", "echo done; touch /shared/done"],
                                                  "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}}}]}}}})
        started = time.monotonic()
        time.sleep(2)
        restart_webhook()
        done = subprocess.run([KUBECTL, "wait", "--for=condition=complete", "job/burst", "-n", ns,
                               f"--timeout={int(args.timeout)}s"], capture_output=True, text=True,
                              timeout=args.timeout + 30, check=False)
        seconds = time.monotonic() - started
        wait_rollout()
        found = pods(ns, "burst=job")
        status = get("job", "burst", "-n", ns).get("status", {})
        return {"scenario": "job", "completions_wanted": args.completions, "parallelism": args.parallelism,
                "completed": done.returncode == 0, "succeeded": status.get("succeeded", 0),
                "failed": status.get("failed", 0), "pods": len(found),
                "pods_injected": sum(injected(p) for p in found), "failed_creates": failed_creates(ns, "Job", "burst"),
                "seconds_to_complete": round(seconds, 1)}
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)


def missed(result: dict[str, Any]) -> list[str]:
    problems = []
    if result["scenario"] == "replicaset":
        if result["pods_created"] != result["pods_wanted"]:
            problems.append(f"{result['pods_created']} of {result['pods_wanted']} Pods created")
        if result["failurePolicy"] == "Fail" and result["failed_creates"]:
            problems.append(f"{result['failed_creates']} failed creates")
        if result["pods_without_sidecar"]:
            problems.append(f"{result['pods_without_sidecar']} Pods without their sidecar")
        if not result["report_lists_exactly_those"]:
            problems.append("sidecar-injector report did not list exactly the Pods without a sidecar")
    else:
        if not result["completed"] or result["succeeded"] != result["completions_wanted"]:
            problems.append(f"the Job did not complete ({result['succeeded']} succeeded)")
        if result["pods_injected"] != result["pods"]:
            problems.append(f"{result['pods'] - result['pods_injected']} Pods without their sidecar")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="scenario", required=True)
    rs = sub.add_parser("replicaset")
    rs.add_argument("--pods", type=int, default=1000)
    rs.add_argument("--failure-policy", choices=("Fail", "Ignore"), default="Fail")
    rs.add_argument("--timeout", type=float, default=600)
    jb = sub.add_parser("job")
    jb.add_argument("--completions", type=int, default=1000)
    jb.add_argument("--parallelism", type=int, default=100)
    jb.add_argument("--timeout", type=float, default=1200)
    for each in (rs, jb):
        each.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = replicaset(args) if args.scenario == "replicaset" else job(args)
    result["missed"] = missed(result)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 1 if result["missed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
