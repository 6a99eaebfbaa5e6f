"""The core (webhook/ but server/, cluster/, tools/ and pki) imports without the HTTPS edge's packages.

It decides and builds the patch and nothing else, so it must not need a web framework, a
metrics client or an X.509 library; the import-linter contracts (pyproject.toml) keep it from
importing the edges, and this keeps it from importing their third-party packages directly.
"""

from __future__ import annotations

from import_support import EDGE_PACKAGES, import_without, modules_of

# Not the core: the edges, the certificates they share (webhook.pki, X.509), and `python -m webhook`
# (the command line's door).
EDGES = ("webhook.server", "webhook.cluster", "webhook.tools", "webhook.pki", "webhook.__main__")
CORE = modules_of("webhook", skip=EDGES)


def test_the_core_is_every_module_but_the_edges() -> None:
    assert {"webhook", "webhook.mutate", "webhook.inject", "webhook.policy", "webhook.interface"} <= set(CORE)
    assert not [name for name in CORE if name.startswith(EDGES)]


def test_core_imports_without_fastapi_uvicorn_prometheus_or_cryptography() -> None:
    done = import_without(CORE)
    assert done.returncode == 0, done.stderr


def test_the_check_fails_for_a_module_that_needs_them() -> None:
    """The blocking is real: the ASGI app, which imports fastapi, cannot be imported so."""
    done = import_without(["webhook.server.app"])
    assert done.returncode != 0
    assert "fastapi" in done.stderr
    assert set(EDGE_PACKAGES) >= {"fastapi", "uvicorn", "starlette", "prometheus_client", "cryptography"}
