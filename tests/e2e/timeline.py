"""What the kubelet did, read from the containers themselves.

The e2e config's `timeline` profile and the application scripts built here print lines
`event NAME SECONDS.MICROSECONDS` (wall clock, the node's, which is this host's on the local
cluster and on kind). `kubectl logs -f`, started before a Pod is deleted, follows each
container until it exits, so start and stop events survive the Pod.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field

from .cluster import Kubectl

# busybox's date has no sub-second format; adjtimex prints the kernel's time in microseconds.
TS = "ts() { adjtimex | awk '/tv_sec/ {s = $2} /tv_usec/ {u = $2} END {printf \"%d.%06d\", s, u}'; }"
_EVENT = re.compile(r"^event (\S+) (\d+\.\d+)$", re.MULTILINE)


def app_script(*steps: str, name: str = "app") -> str:
    """A shell script: print `NAME-start`, run steps, then wait for SIGTERM and print `NAME-term`."""
    lines = [TS, f'echo "event {name}-start $(ts)"', f"trap 'echo \"event {name}-term $(ts)\"; exit 0' TERM",
             *steps, "while true; do sleep 1 & wait $!; done"]
    return "\n".join(lines)


def events(text: str) -> dict[str, float]:
    """The first time of each event in a log."""
    found: dict[str, float] = {}
    for name, stamp in _EVENT.findall(text):
        found.setdefault(name, float(stamp))
    return found


@dataclass
class Follow:
    """`kubectl logs -f` of one container, from its first line until it exits."""

    kube: Kubectl
    pod: str
    namespace: str
    container: str
    process: subprocess.Popen[str] = field(init=False)

    def __post_init__(self) -> None:
        command = [self.kube.binary, "logs", "-f", self.pod, "-n", self.namespace, "-c", self.container]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def events(self, timeout: float = 90.0) -> dict[str, float]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError(f"{self.container}: logs did not end within {timeout:.0f}s:\n{out}\n{err}")
        return events(out)


def wait_ready(kube: Kubectl, pod: str, namespace: str, timeout: float = 120.0) -> None:
    done = kube.run("wait", "--for=condition=Ready", f"pod/{pod}", "-n", namespace, f"--timeout={timeout:.0f}s",
                    timeout=timeout + 20, check=False)
    if done.returncode != 0:
        described = kube.run("describe", "pod", pod, "-n", namespace, check=False).stdout
        raise AssertionError(f"pod {pod} did not become Ready: {done.stderr}\n{described}")


def now() -> float:
    return time.time()
