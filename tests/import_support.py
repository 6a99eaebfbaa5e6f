"""Test helper: import modules in a fresh interpreter in which some packages are not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What only the HTTPS edge (webhook.server) may need: the web framework and server, the
# metrics client and the X.509 library.
EDGE_PACKAGES = ("fastapi", "uvicorn", "starlette", "prometheus_client", "cryptography")

_IMPORT = """
import importlib, sys
for name in {blocked!r}:
    sys.modules[name] = None  # from now on, importing it (or anything under it) raises ImportError
for module in {modules!r}:
    importlib.import_module(module)
"""


def modules_of(package: str, skip: tuple[str, ...] = ()) -> list[str]:
    """Every module of the package (in this checkout), by dotted name; ``skip``: names (and all
    under them) left out."""
    names = []
    for path in sorted((REPO / package.replace(".", "/")).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == s or name.startswith(s + ".") for s in skip):
            names.append(name)
    return names


def import_without(modules: list[str], blocked: tuple[str, ...] = EDGE_PACKAGES) -> subprocess.CompletedProcess[str]:
    """Import ``modules`` in a new interpreter where ``blocked`` packages cannot be imported."""
    code = _IMPORT.format(blocked=blocked, modules=modules)
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60,
                          cwd=REPO)
