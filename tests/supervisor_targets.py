"""Worker entry points for the supervisor tests (a spawned worker imports its target by name)."""

from __future__ import annotations

from webhook.supervisor import STARTUP_FAILURE


def cannot_start(supervisor_pid: int) -> None:
    raise SystemExit(STARTUP_FAILURE)


def report_environment(path: str, supervisor_pid: int) -> None:
    """Write what a worker finds in its environment, then stop (without a restart)."""
    import json
    import os

    with open(path, "w") as out:
        json.dump({name: os.environ.get(name) for name in ("UV_TCP_SINGLE_ACCEPT", "PROMETHEUS_MULTIPROC_DIR")}, out)
    raise SystemExit(STARTUP_FAILURE)
