"""Worker entry points for the supervisor tests (a spawned worker imports its target by name)."""

from __future__ import annotations

from webhook.server.supervisor import STARTUP_FAILURE


def cannot_start(supervisor_pid: int) -> None:
    raise SystemExit(STARTUP_FAILURE)
