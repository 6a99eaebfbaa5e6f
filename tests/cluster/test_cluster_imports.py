"""webhook.cluster stands beside the server, not on it: it imports without the HTTPS edge's
web framework and server (the import-linter contracts keep it from importing webhook.server)."""

from __future__ import annotations

from import_support import import_without, modules_of

HTTP_EDGE = ("fastapi", "uvicorn", "starlette")


def test_cluster_imports_without_the_http_edge() -> None:
    modules = modules_of("webhook.cluster")
    assert "webhook.cluster" in modules
    done = import_without(modules, HTTP_EDGE)
    assert done.returncode == 0, done.stderr
