"""End-to-end tests against a real cluster (a package, so its conftest does not shadow tests/conftest.py)."""
